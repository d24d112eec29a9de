"""Trash deleted into the trash: the `trash_unlayer` operation run on a namespace (a directory
tree behind a stand-in `hdfs` CLI, since no HDFS runs here), and the change a storage report
proposes for it, awaiting two approvals."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from tests.analytics.storage.test_reports import namenode, report
from tests.analytics.storage.trees import trash_tree
from tests.changes.test_operations import fake_tool, rendered, run_sh
from tests.dashboard.test_pages import csrf_of, log_in
from tests.fixtures.app import Tokens

# `hdfs dfs -find GLOB -name NAME -print` and `hdfs dfs -rm -r -skipTrash PATH` over the tree at
# $NS, printing HDFS paths; `sudo -u USER CMD...` runs CMD.
HDFS = r"""
[ "$1" = dfs ] || exit 2
case $2 in
  -find)
    found=1
    for d in $NS$3; do
      [ -e "$d" ] || continue
      found=0
      find "$d" -name "$5" | sed "s|^$NS||"
    done
    [ $found = 0 ] || { echo "find: '$3': No such file or directory" >&2; exit 1; } ;;
  -rm)
    [ "$3 $4" = "-r -skipTrash" ] || exit 2
    [ -e "$NS$5" ] || { echo "rm: '$5': No such file or directory" >&2; exit 1; }
    rm -r "$NS$5" && echo "Deleted $5" ;;
  *) exit 2 ;;
esac
"""


def namespace(tmp_path: Path) -> tuple[Path, Path]:
    """The trash tree, with a second inner trash inside the first: deleting the outer one
    deletes both."""
    tree = trash_tree(tmp_path / "ns")
    deeper = tree.root / "user/alice/.Trash/Current/user/alice/.Trash/Current/x/.Trash/Current"
    deeper.mkdir(parents=True)
    (deeper / "thrice.txt").write_bytes(b"x" * 64)
    bob = tree.root / "user/bob/.Trash/Current/tmp/.Trash/Current"
    bob.mkdir(parents=True)
    (bob / "b.txt").write_bytes(b"y" * 32)
    tools = tmp_path / "bin"
    tools.mkdir()
    fake_tool(tools, "hdfs", f"NS={tree.root}\n{HDFS}")
    fake_tool(tools, "sudo", '[ "$1" = -u ] && shift 2\nexec "$@"')
    return tree.root, tools


def test_only_the_trash_inside_users_trash_is_deleted(tmp_path: Path) -> None:
    root, tools = namespace(tmp_path)
    script = rendered("trash_unlayer", "run", "none")
    done = run_sh(script, tools)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "deleting /user/alice/.Trash/Current/user/alice/.Trash",
        "Deleted /user/alice/.Trash/Current/user/alice/.Trash",
        "deleting /user/bob/.Trash/Current/tmp/.Trash",
        "Deleted /user/bob/.Trash/Current/tmp/.Trash",
    ]
    left = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert left == [
        "tmp/scratch.bin",
        "user/alice/.Trash/250102030405/user/alice/old.csv",
        "user/alice/.Trash/Current/user/alice/data/part-00000",
        "user/alice/.Trash/Current/user/alice/logs/app.log",
        "user/bob/.Trash/Current/tmp/x.bin",
        "user/bob/data/live.txt",
    ]
    again = run_sh(script, tools)  # nothing left to do: it succeeds and deletes nothing
    assert again.returncode == 0, again.stderr
    assert again.stdout == ""


def test_a_trash_that_cannot_be_listed_fails_the_step(tmp_path: Path) -> None:
    root, tools = namespace(tmp_path)
    for trash in root.glob("user/*/.Trash"):
        trash.rename(trash.with_name("Trash"))
    done = run_sh(rendered("trash_unlayer", "run", "none"), tools)
    assert done.returncode == 1
    assert "cannot list the users' trash" in done.stderr


def test_a_report_proposes_deleting_the_inner_trash(
    client: TestClient, tokens: Tokens, tmp_path: Path, db_url: str
) -> None:
    namenode(db_url)
    saved = client.post(
        "/api/v1/storage/reports", json=report(tmp_path), headers=tokens.headers("developer")
    )
    report_id = saved.json()["id"]
    url = f"/api/v1/storage/reports/{report_id}/unlayer"
    assert client.post(url, headers=tokens.headers("viewer")).status_code == 403
    proposed = client.post(url, headers=tokens.headers("developer"))
    assert proposed.status_code == 201, proposed.text
    change = proposed.json()
    assert (change["workflow"], change["state"], change["risk"]) == (
        "remove-layered-trash",
        "pending_approval",
        "high",
    )
    assert change["host_count"] == 1
    assert "31.0 MiB in trash deleted into the trash" in change["reason"]
    preview = client.get(
        f"/api/v1/changes/{change['id']}/preview", headers=tokens.headers("viewer")
    )
    [step] = preview.json()
    assert "hdfs dfs -find '/user/*/.Trash' -name .Trash -print" in step["runs"]
    log_in(client, username="developer", next=f"/analytics/storage/{report_id}")
    page = client.get(f"/analytics/storage/{report_id}")
    assert "Propose deleting the inner trash" in page.text
    posted = client.post(
        f"/analytics/storage/{report_id}/unlayer",
        data={"csrf": csrf_of(page)},
        follow_redirects=False,
    )
    assert posted.status_code == 303
    assert re.fullmatch(r"/changes/\d+", posted.headers["location"])
    missing = client.post("/api/v1/storage/reports/999/unlayer", headers=tokens.headers("admin"))
    assert missing.status_code == 404
