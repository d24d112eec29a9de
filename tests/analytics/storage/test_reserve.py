"""Giving back reserved blocks: the `ext4_reserve` operation run for real on a loop-mounted ext4
image (tune2fs -m, its check and its rollback), and the change the inode analysis proposes per
hardware model, awaiting review."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fleetops.analytics.storage.facts import parse_tune2fs
from fleetops.changes.operations import load_library, validate_params
from fleetops.changes.specs import SpecError
from fleetops.changes.templating import HostFacts, operation_context, render
from fleetops.kit.units import binary_bytes
from fleetops.sim.fleet import generate
from tests.analytics.storage.conftest import HOSTS, RACKS
from tests.analytics.storage.test_provisioning import collect, inodes
from tests.analytics.storage.trees import ext4_image, needs_e2fsprogs, tool
from tests.dashboard.test_pages import csrf_of, log_in
from tests.fixtures.app import Tokens


def phase(name: str, **params: Any) -> str:
    """One phase (run, check, rollback) of ext4_reserve, rendered as the engine renders it."""
    spec = load_library().get("ext4_reserve")
    assert spec is not None
    invocation = getattr(spec, name)
    call = invocation.resolve({})
    assert isinstance(call, str)
    context = operation_context(
        validate_params(spec.params, params),
        host=HostFacts(hostname="localhost"),
        change_id=7,
        timeout=spec.timeout,
    )
    return render(call, context)


def in_namespace(mounts: str, *scripts: str) -> list[subprocess.CompletedProcess[str]]:
    """Each script after the mounts, in one mount namespace of the test's own (so no other
    test's df sees the image), each with its exit status and output told apart."""
    marks = " ; ".join(
        f"echo '--- {i}' ; ( {s} ) ; echo \"--- rc=$?\"" for i, s in enumerate(scripts)
    )
    done = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            f"{mounts} || exit 97; {marks}",
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode == 97 or "unshare:" in done.stderr:
        pytest.skip(f"cannot loop-mount here: {done.stderr.strip()[:200]}")
    results = []
    for chunk in done.stdout.split("--- ")[1:]:
        if chunk.startswith("rc="):
            code = int(chunk[3:].split()[0])
            results[-1] = subprocess.CompletedProcess([], code, results[-1].stdout, done.stderr)
        else:
            results.append(subprocess.CompletedProcess([], -1, chunk.split("\n", 1)[1], ""))
    assert len(results) == len(scripts), done
    return results


@pytest.fixture
def image(tmp_path: Path) -> Path:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("findmnt") is None:
        pytest.skip("loop-mounting an image needs root, unshare and findmnt")
    return ext4_image(tmp_path / "data.img", "64M", "-b", "4096", "-m", "5")


@needs_e2fsprogs
def test_the_reserve_is_given_back_checked_and_rolled_back(image: Path, tmp_path: Path) -> None:
    mount = tmp_path / "data1"
    mount.mkdir()
    blocks = parse_tune2fs(tool("tune2fs", "-l", image)).block_count
    assert parse_tune2fs(tool("tune2fs", "-l", image)).reserved_block_count == blocks * 5 // 100
    params = {"mounts": str(mount), "percent": 1, "state_dir": str(tmp_path / "state")}
    before, run, after, rollback = in_namespace(
        f"mount -o loop {image} {mount}",
        phase("check", **params),
        phase("run", **params),
        phase("check", **params),
        phase("rollback", **params),
    )
    assert before.returncode == 1  # not yet: the step runs
    assert run.returncode == 0, run.stderr
    assert after.returncode == 0  # done: a retry or a rerun skips it
    assert rollback.returncode == 0, rollback.stderr
    assert parse_tune2fs(tool("tune2fs", "-l", image)).reserved_block_count == blocks * 5 // 100
    (again,) = in_namespace(f"mount -o loop {image} {mount}", phase("run", **params))
    assert again.returncode == 0, again.stderr
    assert parse_tune2fs(tool("tune2fs", "-l", image)).reserved_block_count == blocks // 100


@needs_e2fsprogs
def test_system_unmounted_and_non_ext_mounts_are_refused_untouched(
    image: Path, tmp_path: Path
) -> None:
    mount = tmp_path / "data1"
    mount.mkdir()
    state = str(tmp_path / "state")
    reserved = parse_tune2fs(tool("tune2fs", "-l", image)).reserved_block_count
    system, missing, tmpfs = in_namespace(
        f"mount -o loop {image} {mount} && mkdir -p {tmp_path}/t && mount -t tmpfs t {tmp_path}/t",
        phase("run", mounts=f"{mount},/var", state_dir=state),
        phase("run", mounts=f"{mount},{tmp_path}/nowhere", state_dir=state),
        phase("run", mounts=f"{mount},{tmp_path}/t", state_dir=state),
    )
    assert system.returncode == 2
    assert "/var is a system mount" in system.stderr
    assert missing.returncode == 2
    assert f"{tmp_path}/nowhere is not mounted" in missing.stderr
    assert tmpfs.returncode == 2
    assert "is tmpfs, not ext2/3/4" in tmpfs.stderr
    # every mount is checked before any is changed: the good one kept its reserve
    assert parse_tune2fs(tool("tune2fs", "-l", image)).reserved_block_count == reserved


@pytest.mark.parametrize(
    "mounts", ["data1", "/data1;reboot", "/data1,", "-m /data1", "/data1/", "/", "/data1,/"]
)
def test_mounts_that_are_not_absolute_paths_are_refused(mounts: str) -> None:
    spec = load_library().get("ext4_reserve")
    assert spec is not None
    with pytest.raises(SpecError, match="mounts"):
        validate_params(spec.params, {"mounts": mounts})


# the proposal ----------------------------------------------------------------------------------


def propose(
    fleet_client: TestClient, fleet_users: Tokens, role: str = "developer", **body: Any
) -> Any:
    return fleet_client.post(
        "/api/v1/storage/inodes/reserve", json=body, headers=fleet_users.headers(role)
    )


def test_a_models_reserve_is_proposed_as_a_change_awaiting_review(
    fleet_client: TestClient, fleet_users: Tokens
) -> None:
    nothing = propose(fleet_client, fleet_users, model="dn-gen3")
    assert nothing.status_code == 409  # no facts collected: nothing to propose
    assert "collect" in nothing.json()["detail"]
    collect(fleet_client, fleet_users)
    view = inodes(fleet_client, fleet_users, limit=1000)
    answer = propose(fleet_client, fleet_users, model="dn-gen3")
    assert answer.status_code == 201, answer.text
    change = answer.json()
    assert change["workflow"] == "release-reserved-blocks"
    assert change["selector"] == "model=dn-gen3"
    assert change["state"] == "pending_approval"  # medium risk: reviewed
    datanodes = sum(h.model == "dn-gen3" for h in generate(hosts=HOSTS, racks=RACKS).hosts)
    assert change["host_count"] == datanodes
    assert change["params"] == {
        "mounts": ",".join(f"/data{i}" for i in range(1, 13)),
        "percent": 1,
    }
    (model,) = [m for m in view["by_model"] if m["key"] == "dn-gen3"]
    assert model["reserved_saving_bytes"] > 0
    assert binary_bytes(model["reserved_saving_bytes"]) in change["reason"]
    preview = fleet_client.get(
        f"/api/v1/changes/{change['id']}/preview", headers=fleet_users.headers("operator")
    )
    assert preview.status_code == 200, preview.text
    assert "tune2fs -m 1" in preview.json()[0]["runs"]  # what the approver reads


def test_a_proposal_is_refused_with_what_to_do(
    fleet_client: TestClient, fleet_users: Tokens
) -> None:
    collect(fleet_client, fleet_users)
    assert propose(fleet_client, fleet_users, role="viewer", model="dn-gen3").status_code == 403
    none = propose(
        fleet_client, fleet_users, model="cn-gen4"
    )  # NVMe scratch on XFS, root keeps its own
    assert none.status_code == 409
    assert "no data filesystem" in none.json()["detail"]
    unknown = propose(fleet_client, fleet_users, model="nope")
    assert unknown.status_code == 409
    bad = propose(fleet_client, fleet_users, model="dn-gen3", percent=7)
    assert bad.status_code == 422


def test_the_page_proposes_a_models_reserve(fleet_client: TestClient, fleet_users: Tokens) -> None:
    collect(fleet_client, fleet_users)
    log_in(fleet_client, username="developer", next="/analytics/storage")
    page = fleet_client.get("/analytics/storage")
    assert 'name="model" value="dn-gen3"' in page.text
    assert 'name="model" value="cn-gen4"' not in page.text  # nothing to give back there
    form = {"csrf": csrf_of(page), "model": "dn-gen3"}
    sent = fleet_client.post("/analytics/storage/inodes/reserve", data=form, follow_redirects=False)
    assert sent.status_code == 303, sent.text
    change_id = sent.headers["location"].rsplit("/", 1)[1]
    got = fleet_client.get(
        f"/api/v1/changes/{change_id}", headers=fleet_users.headers("viewer")
    ).json()
    assert (got["workflow"], got["requester"]) == ("release-reserved-blocks", "developer")
    refused = fleet_client.post(
        "/analytics/storage/inodes/reserve", data={**form, "model": "nope"}, follow_redirects=False
    )
    assert refused.status_code == 409
    assert "no collected filesystem facts from hosts of model" in refused.text
