"""Inventory: the fleet's regions, datacenters, clusters, racks, switches, hosts, links and SKUs."""
