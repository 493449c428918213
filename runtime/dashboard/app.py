"""The dashboard's web application (Starlette): pages, the JSON API, downloads.

Routes:
- ``/``: the search (the page polls ``/api/state``);
- ``/trial/{id}``: one trial: its text, per-epoch metrics, failure reason, generated source;
- ``/trial/{id}/model.py``, ``/trial/{id}/weights``, ``/trial/{id}/model.onnx``: downloads;
- ``/files/{name}``: the files a search writes beside its store (an allow-list);
- ``/api/state?since=N&steps=M&server=ID``: the overview and the trials (steps) after the
  first N (M) that this server (ID) already sent; ``/api/trials``, ``/api/trials/{id}``;
- ``/static/...``: the page's script, style and Chart.js (shipped in the package).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from nasforge.grammar.errors import NasforgeError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from . import files, views
from .access import AccessMiddleware
from .reader import Snapshot, StoreReader, encode

HERE = Path(__file__).parent
POLL_SECONDS = 2.0  # how often the page asks for news
OVERVIEW_SHARE = 0.05  # of one core, at most, spent recomputing the overview


class Dashboard:
    """The state behind the routes: the reader, and the overview of its latest snapshot."""

    def __init__(self, out_dir: Path, *, min_interval: float = 1.0) -> None:
        self.out_dir = Path(out_dir)
        self.reader = StoreReader(self.out_dir, min_interval=min_interval)
        self.reader.snapshot()  # the first, longest read happens before the page is served
        self.server_id = secrets.token_hex(6)
        self._lock = threading.Lock()
        self._overview: tuple[Snapshot, bytes] | None = None
        self._next_overview = 0.0

    def overview(self, snapshot: Snapshot) -> bytes:
        """views.overview of a recent snapshot, as JSON. Its cost grows with the trials,
        so after taking t seconds it is not recomputed for t / OVERVIEW_SHARE seconds:
        the page of a huge search updates its summary less often rather than taking
        the search's CPU."""
        with self._lock:
            now = time.monotonic()
            if self._overview is None or (
                self._overview[0] is not snapshot and now >= self._next_overview
            ):
                began = time.perf_counter()
                computed = encode(views.overview(snapshot, snapshot.read_at))
                self._overview = (snapshot, computed)
                self._next_overview = now + (time.perf_counter() - began) / OVERVIEW_SHARE
            return self._overview[1]

    def trial(self, request: Request) -> dict[str, Any] | None:
        try:
            trial_id = int(request.path_params["trial_id"])
        except (KeyError, ValueError):
            return None
        return self.reader.trial(trial_id)

    def downloads(self, trial: dict[str, Any]) -> dict[str, str]:
        """What can be downloaded for `trial`: {label: url}."""
        base = f"/trial/{trial['id']}"
        found = {"model.py": f"{base}/model.py"}
        if files.trial_weights(self.out_dir, trial) is not None:
            found["weights"] = f"{base}/weights"
        if files.trial_onnx(self.out_dir, trial) is not None:
            found["model.onnx"] = f"{base}/model.onnx"
        return found


def create_app(
    out_dir: str | Path, *, token: str | None = None, min_interval: float = 1.0
) -> Starlette:
    """The dashboard of the search in `out_dir` (StoreError when there is none); with a
    `token`, every request must carry it (see access.py)."""
    board = Dashboard(Path(out_dir), min_interval=min_interval)
    templates = Jinja2Templates(directory=str(HERE / "templates"))

    def index(request: Request) -> Response:
        snapshot = board.reader.snapshot()
        return templates.TemplateResponse(
            request,
            "index.html",
            {"out_dir": str(board.out_dir), "config": snapshot.config, "poll": POLL_SECONDS},
        )

    def state(request: Request) -> Response:
        # In a worker thread (a sync route): a read of many new trials or a recomputed
        # overview must not hold up the other requests.
        query = request.query_params
        fresh = query.get("server") != board.server_id  # another server's counts mean nothing
        since = 0 if fresh else _count(query.get("since"))
        steps = 0 if fresh else _count(query.get("steps"))
        snapshot = board.reader.snapshot()
        body = b"".join(
            [
                b'{"server":', encode(board.server_id),
                b',"version":', encode(snapshot.version),
                b',"overview":', board.overview(snapshot),
                b',"total":', encode(len(snapshot.trials)),
                b',"trials":', snapshot.trials_json(since),
                b',"steps":', snapshot.steps_json(steps), b"}",
            ]
        )  # fmt: skip
        # The counts also as headers: a tool can follow the search without decoding JSON.
        headers = {
            "x-nasforge-server": board.server_id,
            "x-nasforge-total": str(len(snapshot.trials)),
            "x-nasforge-steps": str(len(snapshot.steps)),
        }
        return Response(body, media_type="application/json", headers=headers)

    def all_trials(request: Request) -> Response:
        return JSONResponse(views.by_id(board.reader.snapshot().trials))

    def one_trial(request: Request) -> Response:
        trial = board.trial(request)
        if trial is None:
            return JSONResponse({"error": "no such trial"}, status_code=404)
        return JSONResponse({**trial, "downloads": board.downloads(trial)})

    def trial_page(request: Request) -> Response:
        trial = board.trial(request)
        if trial is None:
            return PlainTextResponse("no such trial", status_code=404)
        source, source_error = None, None
        try:
            source = files.highlighted(files.model_source(trial["arch"]))
        except NasforgeError as err:
            source_error = str(err)
        epochs = trial["metrics"].get("epochs")
        return templates.TemplateResponse(
            request,
            "trial.html",
            {
                "trial": trial,
                "metrics": json.dumps({k: v for k, v in trial["metrics"].items() if k != "epochs"}),
                "epochs": epochs if isinstance(epochs, list) else [],
                "source": source,
                "source_error": source_error,
                "downloads": board.downloads(trial),
                "out_dir": str(board.out_dir),
            },
        )

    def model_file(request: Request) -> Response:
        trial = board.trial(request)
        if trial is None:
            return PlainTextResponse("no such trial", status_code=404)
        try:
            source = files.model_source(trial["arch"])
        except NasforgeError as err:
            return PlainTextResponse(str(err), status_code=404)
        return PlainTextResponse(
            source,
            media_type="text/x-python",
            headers={"content-disposition": f'attachment; filename="trial{trial["id"]}_model.py"'},
        )

    def weights_file(request: Request) -> Response:
        trial = board.trial(request)
        path = None if trial is None else files.trial_weights(board.out_dir, trial)
        return _download(path, f"trial{trial['id']}_weights.pt" if trial else "")

    def onnx_file(request: Request) -> Response:
        trial = board.trial(request)
        path = None if trial is None else files.trial_onnx(board.out_dir, trial)
        return _download(path, f"trial{trial['id']}_model.onnx" if trial else "")

    def output_file(request: Request) -> Response:
        name = request.path_params["name"]
        path = files.output_file(board.out_dir, name)
        if path is None:
            return PlainTextResponse("not a file of this search", status_code=404)
        return FileResponse(path, media_type=files.OUTPUT_FILES[name], filename=name)

    routes = [
        Route("/", index),
        Route("/api/state", state),
        Route("/api/trials", all_trials),
        Route("/api/trials/{trial_id:int}", one_trial),
        Route("/trial/{trial_id:int}", trial_page),
        Route("/trial/{trial_id:int}/model.py", model_file),
        Route("/trial/{trial_id:int}/weights", weights_file),
        Route("/trial/{trial_id:int}/model.onnx", onnx_file),
        Route("/files/{name}", output_file),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        board.reader.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.dashboard = board
    app.add_middleware(AccessMiddleware, token=token)
    return app


def _count(text: str | None) -> int:
    try:
        return max(0, int(text or 0))
    except ValueError:
        return 0


def _download(path: Path | None, filename: str) -> Response:
    if path is None:
        return PlainTextResponse("this search kept no such file", status_code=404)
    return FileResponse(path, media_type="application/octet-stream", filename=filename)
