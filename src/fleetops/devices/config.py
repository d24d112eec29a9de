"""The devices domain's settings, turned into the objects its services take."""

from __future__ import annotations

from datetime import timedelta

from fleetops.changes.approvals import ApprovalPolicy
from fleetops.changes.operations import OperationLibrary
from fleetops.config import Settings
from fleetops.devices.lifecycle.service import LifecycleConfig
from fleetops.devices.policy.safety import Caps
from fleetops.devices.policy.service import Limits
from fleetops.devices.repairs.service import RUNGS, RepairConfig


def device_limits(settings: Settings) -> Limits:
    return Limits(
        max_per_hour=settings.health_suspect_per_hour,
        storm_fraction=settings.storm_fraction,
        caps=Caps(
            rack=settings.isolation_rack_fraction,
            cluster=settings.isolation_cluster_fraction,
            per_hour=settings.isolation_per_hour,
        ),
    )


def repair_config(settings: Settings) -> RepairConfig:
    unknown = sorted(set(settings.repair_sla_hours) - set(RUNGS))
    if unknown:
        raise ValueError(
            f"repair_sla_hours: unknown repair action(s) {', '.join(unknown)} "
            f"(the ladder is {' → '.join(RUNGS)})"
        )
    return RepairConfig(
        sla_hours=dict(settings.repair_sla_hours),
        probation=timedelta(days=settings.probation_days),
    )


def lifecycle_config(settings: Settings, library: OperationLibrary) -> LifecycleConfig:
    return LifecycleConfig(
        library=library,
        approvals=ApprovalPolicy(medium=settings.approvals_medium, high=settings.approvals_high),
        isolation_workflow=settings.isolation_workflow,
        verification_workflow=settings.verification_workflow,
        preapproved=settings.isolation_preapproved,
        repair=repair_config(settings),
        verification_params={
            "probes": settings.verification_probes,
            "quick": settings.inspection_quick,
        },
    )
