"""`nasforge dashboard`: its routes and API on stores made by real table-evaluator searches
(finished, being written, SIGKILLed, with failed trials, with none), the same errors as
`nasforge report`, nothing written into DIR, only the search's own files served."""

from __future__ import annotations

import hashlib
import html
import http.client
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the dashboard's extra: pip install 'nasforge[dashboard]'")
pytest.importorskip("httpx2", reason="Starlette's test client needs httpx2 (the dev extra)")

from cli_runner import run
from nasforge.codegen import generate
from nasforge.grammar import parse
from nasforge.runtime.cli.dashboard import beside
from nasforge.runtime.dashboard import files, views
from nasforge.runtime.dashboard.app import create_app
from nasforge.runtime.dashboard.reader import StoreReader
from nasforge.runtime.dashboard.serve import Background
from nasforge.runtime.search.store import TrialStore
from starlette.testclient import TestClient

LOOPBACK = "http://127.0.0.1"






def search_args(table: Path, out: Path, trials: int, *extra: str) -> list[str]:
    return [
        "search", "--space", "nb201", "--evaluator", "table", "--table", str(table),
        "--strategy", "reinforce", "--trials", str(trials), "--batch", "4", "--out", str(out),
        "--no-progress", "--no-onnx", *extra,
    ]  # fmt: skip




@pytest.fixture(scope="module")
def finished(table: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("search") / "run"
    result = run(*search_args(table, out, 40))
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def with_failures(table: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A search whose table lacks every third cell: those trials fail, saying why."""
    lines = table.read_text().splitlines()
    holed = tmp_path_factory.mktemp("holed") / "holed.csv"
    holed.write_text("\n".join([lines[0], *lines[1::3], *lines[2::3]]) + "\n")
    out = tmp_path_factory.mktemp("failing") / "run"
    result = run(*search_args(holed, out, 24, "--strategy", "random"))
    assert result.exit_code == 0, result.output
    return out


def stored(out: Path) -> list[tuple[int, str, str, float]]:
    uri = f"file:{out / 'search.db'}?mode=ro"
    with sqlite3.connect(uri, uri=True, timeout=30) as db:
        return db.execute("SELECT id, arch, status, reward FROM trials ORDER BY id").fetchall()


def folder_state(out: Path) -> dict[str, str]:
    """Every file of DIR and a hash of its bytes (SQLite's shared-memory index excepted)."""
    state = {}
    for path in sorted(out.rglob("*")):
        if path.is_file() and not path.name.endswith("-shm"):
            state[str(path.relative_to(out))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def client(out: Path, **kwargs: object) -> TestClient:
    return TestClient(create_app(out, **kwargs), base_url=LOOPBACK)  # type: ignore[arg-type]


def api_state(c: TestClient, since: int = 0, server: str = "", steps: int = 0) -> dict:
    response = c.get("/api/state", params={"since": since, "steps": steps, "server": server})
    assert response.status_code == 200, response.text
    return response.json()


# --- a finished search ----------------------------------------------------------------


def test_state_of_a_finished_search_matches_its_store(finished: Path) -> None:
    rows = stored(finished)
    with client(finished) as c:
        state = api_state(c)
    search = state["overview"]["search"]
    assert search["state"] == "finished" and search["done"] == search["asked"] == len(rows) == 40
    assert search["eta"] is None
    assert sorted(t["id"] for t in state["trials"]) == [r[0] for r in rows]
    by_id = {t["id"]: t for t in state["trials"]}
    for trial_id, arch, status, reward in rows:
        assert (by_id[trial_id]["arch"], by_id[trial_id]["status"]) == (arch, status)
        assert by_id[trial_id]["reward"] == reward
    # The table's valid12 is the accuracy; the reward is valid12 / 100.
    ok = [t for t in state["trials"] if t["status"] == "ok"]
    assert ok and all(t["accuracy"] == pytest.approx(t["reward"]) for t in ok)
    best = max(ok, key=lambda t: (t["reward"], -t["id"]))
    summary = json.loads((finished / "summary.json").read_text())
    assert search["best"] == {"id": best["id"], "reward": best["reward"], "arch": best["arch"]}
    assert summary["best"]["trial"] == best["id"]
    assert state["overview"]["config"]["strategy"] == "reinforce"
    # REINFORCE's statistics of every told step (10 steps of 4; the last told too).
    assert [s["step"] for s in state["steps"]] == list(range(10))
    assert {"baseline", "entropy", "loss"} <= set(state["steps"][0]["stats"])
    quarters = state["overview"]["quarters"]
    assert [sum(row) for row in quarters["counts"]] == [10, 10, 10, 10]
    in_order = [by_id[i]["reward"] for i in sorted(by_id)]
    assert quarters["means"][0] == pytest.approx(sum(in_order[:10]) / 10)
    assert state["overview"]["staleness"] == []  # not the Ray backend


def test_a_client_gets_each_trial_once(finished: Path) -> None:
    with client(finished) as c:
        first = api_state(c)
        again = api_state(c, len(first["trials"]), first["server"], len(first["steps"]))
        other_server = api_state(c, since=len(first["trials"]), server="another")
    assert len(first["trials"]) == 40 and again["trials"] == [] and again["steps"] == []
    assert len(other_server["trials"]) == 40  # counts from another server mean nothing
    with client(finished) as c:
        response = c.get("/api/state")
    assert response.headers["x-nasforge-total"] == "40"
    assert response.headers["x-nasforge-steps"] == str(len(first["steps"]))
    assert response.headers["x-nasforge-server"] == response.json()["server"]


def test_trial_page_shows_the_generated_source_and_downloads(finished: Path) -> None:
    best = json.loads((finished / "summary.json").read_text())["best"]
    with client(finished) as c:
        page = c.get(f"/trial/{best['trial']}")
        model = c.get(f"/trial/{best['trial']}/model.py")
        detail = c.get(f"/api/trials/{best['trial']}").json()
        missing = [
            c.get(u).status_code for u in ("/trial/999", "/api/trials/999", "/trial/0/model.py")
        ]
    assert page.status_code == 200
    assert best["arch"] in page.text and 'class="source"' in page.text
    shown = html.unescape(re.sub(r"<[^>]+>", "", page.text))
    assert all(line in shown for line in generate(parse(best["arch"])).splitlines())
    # Exactly what `nasforge compile` writes (the generated best_model.py of the search, too).
    assert model.text == generate(parse(best["arch"])) == (finished / "best_model.py").read_text()
    assert model.headers["content-disposition"].startswith("attachment")
    assert detail["downloads"] == {"model.py": f"/trial/{best['trial']}/model.py"}  # --no-onnx
    assert detail["metrics"]["valid12"] == pytest.approx(100 * best["reward"])
    assert missing == [404, 404, 404]


def test_main_page_and_assets_ship_in_the_package(finished: Path) -> None:
    with client(finished) as c:
        page = c.get("/")
        assets = {u: c.get(u) for u in ("/static/dashboard.js", "/static/chart.umd.min.js")}
    assert page.status_code == 200 and str(finished) in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from a CDN
    for url, response in assets.items():
        assert response.status_code == 200 and len(response.content) > 1000, url
    assert "Chart.js v4" in assets["/static/chart.umd.min.js"].text


def test_only_the_searchs_files_are_served(finished: Path, tmp_path: Path) -> None:
    """Raw paths (no client-side normalisation) against a real server on the loopback."""
    out = tmp_path / "copy"
    out.mkdir()
    for path in finished.iterdir():
        if path.is_file() and path.name not in {"best.arch"}:
            (out / path.name).write_bytes(path.read_bytes())
    (tmp_path / "secret.txt").write_text("secret")
    (out / "best.arch").symlink_to(tmp_path / "secret.txt")  # a link, even to a name allowed
    (out / "notes.txt").write_text("not written by the search")
    attempts = [
        "/files/../secret.txt", "/files/..%2Fsecret.txt", "/files/%2e%2e%2fsecret.txt",
        "/files/%2Fetc%2Fpasswd", "/files//etc/passwd", "/files/%00", "/files/best.arch",
        "/files/notes.txt", "/files/search.db", "/files/weights", "/static/../app.py",
        "/static/%2e%2e/app.py", "/static/..%2fapp.py", "/static/%2Fetc%2Fpasswd",
        "/trial/1/..%2F..%2Fsearch.db", "/../secret.txt", "/%2e%2e/secret.txt",
    ]  # fmt: skip
    with Background(create_app(out)) as served:
        host, port = served.sock.getsockname()[:2]
        statuses = {}
        for path in [*attempts, "/files/report.md", "/files/summary.json"]:
            connection = http.client.HTTPConnection(host, port, timeout=30)
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read()
            statuses[path] = response.status
            assert b"secret" not in body and b"root:" not in body, path
            connection.close()
    assert {path: statuses[path] for path in attempts} == dict.fromkeys(attempts, 404)
    assert statuses["/files/report.md"] == statuses["/files/summary.json"] == 200


def test_kept_weights_are_served_by_their_recorded_name_only(tmp_path: Path) -> None:
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "abc.pt").write_bytes(b"w")
    (tmp_path / "outside.pt").write_bytes(b"x")
    (weights / "link.pt").symlink_to(tmp_path / "outside.pt")
    trial = {"id": 3, "metrics": {}}
    assert (
        files.trial_weights(tmp_path, {**trial, "metrics": {"weights": "abc.pt"}})
        == weights / "abc.pt"
    )
    for name in ("../outside.pt", "/etc/passwd", "link.pt", "", ".", "..", "a\\b", "x\0y", 7):
        assert files.trial_weights(tmp_path, {**trial, "metrics": {"weights": name}}) is None, name


def test_nothing_is_written_into_the_search_folder(finished: Path) -> None:
    before = folder_state(finished)
    names = sorted(p.name for p in finished.iterdir())
    with client(finished) as c:
        for url in (
            "/",
            "/api/state",
            "/api/trials",
            "/trial/1",
            "/trial/1/model.py",
            "/files/report.md",
        ):
            assert c.get(url).status_code == 200, url
    assert folder_state(finished) == before
    assert sorted(p.name for p in finished.iterdir()) == names  # no -wal / -shm made


# --- failed trials, no trials, the errors of `nasforge report` --------------------------


def test_failed_trials_show_their_reason(with_failures: Path) -> None:
    rows = stored(with_failures)
    failed = [r for r in rows if r[2] == "failed"]
    assert failed, "every third cell is missing from the table"
    with client(with_failures) as c:
        state = api_state(c)
        page = c.get(f"/trial/{failed[0][0]}")
    assert state["overview"]["search"]["failed"] == len(failed)
    reason = next(t["error"] for t in state["trials"] if t["id"] == failed[0][0])
    assert reason.startswith("the cell |") and "is not in the table" in reason
    assert page.status_code == 200 and 'id="failure"' in page.text
    assert (
        reason.split(" is not")[0].replace("|", "&#124;")[:20] in page.text
        or reason[:20] in page.text
    )


@pytest.fixture(scope="module")
def limited(table: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A search under --max-params 400k: about half the nb201 cells are over it."""
    out = tmp_path_factory.mktemp("limited") / "run"
    result = run(*search_args(table, out, 24, "--strategy", "random", "--max-params", "400k"))
    assert result.exit_code == 0, result.output
    return out


def test_over_budget_trials_are_counted_and_shown_apart(limited: Path) -> None:
    rows = stored(limited)
    over = [r for r in rows if r[2] == "over_budget"]
    ran = [r for r in rows if r[2] in ("ok", "failed")]
    assert over and ran, "the limit cuts the space"
    with client(limited) as c:
        search = api_state(c)["overview"]["search"]
        main = c.get("/").text
        script = c.get("/static/dashboard.js").text
        style = c.get("/static/dashboard.css").text
        page = c.get(f"/trial/{over[0][0]}").text
        trained = c.get(f"/trial/{ran[0][0]}").text
    # Never trained, so not among the evaluated: a count of their own.
    assert search["over_budget"] == len(over)
    assert search["evaluated"] == len(ran)
    assert search["evaluated"] + search["over_budget"] + search["repeats"] == len(rows)
    # A label, a filter, a colour for table rows and a series in the reward chart.
    assert '<option value="over_budget">over budget (never trained)</option>' in main
    assert "tr.over_budget td { color: var(--over-budget); }" in style
    assert 'scatter("over budget (never trained)", colour.over_budget' in script
    assert '<span class="badge over_budget">' in page
    assert "never trained: its cost is over a limit" in page
    assert "<strong>Over budget:</strong>" in page and "over the budget: " in page
    assert "never trained" not in trained and "Over budget" not in trained


def test_a_store_with_no_trials(tmp_path: Path) -> None:
    with TrialStore.create(tmp_path / "search.db", {"trials": 8, "strategy": "random"}):
        pass
    with client(tmp_path) as c:
        state = api_state(c)
        page = c.get("/")
    assert state["total"] == 0 and state["trials"] == [] and state["steps"] == []
    assert state["overview"]["search"]["done"] == 0 and state["overview"]["search"]["best"] is None
    assert state["overview"]["quarters"] is None
    assert state["overview"]["pareto"] == {"parameters": [], "macs": []}
    assert page.status_code == 200


@pytest.mark.parametrize(
    "case", ["missing", "not-a-search", "corrupt", "foreign-sqlite", "no-config"]
)
def test_the_same_errors_as_nasforge_report(case: str, tmp_path: Path) -> None:
    out = tmp_path / "dir"
    if case != "missing":
        out.mkdir()
    if case == "not-a-search":
        (out / "notes.txt").write_text("hello")
    elif case == "corrupt":
        (out / "search.db").write_bytes(b"this is not a database" * 100)
    elif case == "foreign-sqlite":
        with sqlite3.connect(out / "search.db") as db:
            db.execute("CREATE TABLE other (x)")
    elif case == "no-config":
        with sqlite3.connect(out / "search.db") as db:
            db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    dashboard = run("dashboard", out, "--port", "0")
    report = run("report", out)
    assert dashboard.exit_code == report.exit_code == 2
    assert dashboard.stderr == report.stderr
    assert dashboard.stderr.startswith("nasforge: error: ") and "Traceback" not in dashboard.output


def test_another_host_needs_allow_remote_and_then_a_token(finished: Path) -> None:
    refused = run("dashboard", finished, "--host", "0.0.0.0")
    assert refused.exit_code == 2
    assert (
        "--host 0.0.0.0 would serve the search to other machines; add --allow-remote"
        in refused.stderr
    )
    with TestClient(create_app(finished, token="s3cret"), base_url="http://10.1.2.3") as c:
        assert c.get("/api/state").status_code == 401
        assert c.get("/api/state?token=wrong").status_code == 401
        opened = c.get("/?token=s3cret")
        assert (
            opened.status_code == 200
            and "nasforge_dashboard=s3cret" in opened.headers["set-cookie"]
        )
        assert c.get("/api/state").status_code == 200  # the cookie carries it now
    with TestClient(create_app(finished), base_url="http://example.com") as c:
        assert c.get("/").status_code == 403  # a DNS name pointing at the loopback: refused
    with TestClient(create_app(finished), base_url="http://localhost:8080") as c:
        assert c.get("/").status_code == 200


# --- a search being written, then SIGKILLed ----------------------------------------------


def count(out: Path) -> int:
    try:
        return len(stored(out))
    except sqlite3.OperationalError:
        return 0


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="signals a process (POSIX)")
def test_while_a_search_writes_and_after_it_is_killed(table: Path, tmp_path: Path) -> None:
    out = tmp_path / "live"
    args = search_args(table, out, 100_000, "--strategy", "random", "--batch", "1")
    process = subprocess.Popen(
        [sys.executable, "-m", "nasforge.runtime.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(1200):  # the search stores its first trials (bounded wait)
            if count(out) >= 20 or process.poll() is not None:
                break
            time.sleep(0.05)
        assert process.poll() is None and count(out) >= 20
        with client(out, min_interval=0.0) as c:
            state = api_state(c)
            seen = {t["id"] for t in state["trials"]}
            assert state["overview"]["search"]["state"] == "running"
            assert state["overview"]["search"]["eta"] is not None
            grown = 0
            for _ in range(400):  # poll as the page does until new trials came in twice
                news = api_state(c, since=len(seen), server=state["server"])
                ids = {t["id"] for t in news["trials"]}
                assert not ids & seen, "a trial was sent twice"
                seen |= ids
                grown += bool(ids)
                if grown >= 2:
                    break
                time.sleep(0.05)
            assert grown >= 2, "the search stored no new trials"
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            after = api_state(c, since=len(seen), server=state["server"])
            seen |= {t["id"] for t in after["trials"]}
            assert seen == {r[0] for r in stored(out)}  # every committed trial, once
            assert after["overview"]["search"]["state"] == "running"  # for a minute or so
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # Killed: -wal and -shm stay behind; the reader reads through them.
    reader = StoreReader(out, min_interval=0.0)
    snapshot = reader.snapshot()
    assert len(snapshot.trials) == len(seen)
    quiet = views.search_state(snapshot, now=snapshot.last_write + views.QUIET_SECONDS + 1)
    assert quiet["state"] == "stopped" and quiet["eta"] is None
    reader.close()


# --- the views ---------------------------------------------------------------------------


def trial(i: int, accuracy: float | None, parameters: int | None, status: str = "ok") -> dict:
    return {"id": i, "status": status, "accuracy": accuracy, "parameters": parameters,
            "macs": None, "reward": accuracy or 0.0, "finished_at": float(i)}  # fmt: skip


def test_pareto_front() -> None:
    trials = [
        trial(1, 0.50, 100), trial(2, 0.60, 300), trial(3, 0.55, 200), trial(4, 0.70, 1000),
        trial(5, 0.65, 1000), trial(6, 0.60, 300), trial(7, 0.90, 50, "failed"),
        trial(8, 0.58, 250), trial(9, None, 10), trial(10, 0.40, None), trial(11, 0.45, 150),
    ]  # fmt: skip
    # By increasing cost, each point better than every cheaper one; ties: the first trial.
    assert views.pareto_front(trials, "parameters") == [1, 3, 8, 2, 4]
    assert views.pareto_front(trials, "macs") == []


# --- `nasforge search --dashboard` -------------------------------------------------------


def test_search_dashboard_serves_beside_the_search(
    table: Path, finished: Path, tmp_path: Path
) -> None:
    options = {"dashboard": True, "dashboard_host": "127.0.0.1", "dashboard_port": 0,
               "dashboard_allow_remote": False}  # fmt: skip
    with beside(finished, options) as address:
        assert address is not None and address.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(address + "api/state", timeout=60) as response:
            assert json.load(response)["total"] == 40
    with pytest.raises(OSError):
        urllib.request.urlopen(address + "api/state", timeout=10)  # stopped with the block
    out = tmp_path / "run"
    result = run(*search_args(table, out, 8, "--dashboard", "--dashboard-port", "0"))
    assert result.exit_code == 0, result.output
    assert "dashboard: http://127.0.0.1:" in result.stderr
