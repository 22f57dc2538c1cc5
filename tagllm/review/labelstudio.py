"""A small client of Label Studio's documented REST API: projects, task import with predictions,
annotations, export. No SDK: the engine's dependencies stay its own.

Authentication: a legacy API token is sent as `Authorization: Token <token>`; a personal access
token (a JWT) is exchanged at `/api/token/refresh` for a short-lived access token sent as
`Authorization: Bearer <access>`, exchanged again when the server answers 401.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

MAX_ERROR_CHARS = 300


class LabelStudioError(RuntimeError):
    """Label Studio could not be reached or refused a request; the message says which."""


def _is_personal_access_token(token: str) -> bool:
    return token.startswith("eyJ") and token.count(".") == 2


class LabelStudioClient:
    def __init__(self, url: str, token: str, timeout: float = 60.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise LabelStudioError(f"Label Studio URL {url[:80]!r} must start with http:// or https://")
        if not token:
            raise LabelStudioError("no Label Studio token: pass --token or set LABEL_STUDIO_API_KEY")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._access = ""

    def _authorization(self, fresh: bool = False) -> str:
        if not _is_personal_access_token(self.token):
            return f"Token {self.token}"
        if fresh or not self._access:
            answer = self._send("POST", "/api/token/refresh", {"refresh": self.token}, authorization="")
            self._access = str(answer["access"])
        return f"Bearer {self._access}"

    def _send(self, method: str, path: str, body: Any = None, authorization: str | None = None) -> Any:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if authorization is None:
            authorization = self._authorization()
        if authorization:
            headers["Authorization"] = authorization
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:MAX_ERROR_CHARS]
            if exc.code == 401 and authorization.startswith("Bearer "):
                self._access = ""
                raise _Expired() from None
            raise LabelStudioError(f"Label Studio {method} {path}: HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise LabelStudioError(f"cannot reach Label Studio at {self.url}: {reason}") from None
        return json.loads(text) if text.strip() else None

    def request(self, method: str, path: str, body: Any = None) -> Any:
        try:
            return self._send(method, path, body)
        except _Expired:
            pass
        try:
            return self._send(method, path, body, authorization=self._authorization(fresh=True))
        except _Expired:
            raise LabelStudioError(
                f"Label Studio {method} {path}: the access token was refused (HTTP 401)"
            ) from None

    def create_project(self, title: str, label_config: str, description: str = "") -> int:
        project = self.request(
            "POST",
            "/api/projects/",
            {"title": title, "label_config": label_config, "description": description},
        )
        return int(project["id"])

    def project(self, project_id: int) -> dict[str, Any]:
        return self.request("GET", f"/api/projects/{int(project_id)}/")

    def import_tasks(self, project_id: int, tasks: list[dict[str, Any]]) -> int:
        """Imports tasks with their predictions; returns how many tasks the project took."""
        answer = self.request("POST", f"/api/projects/{int(project_id)}/import", tasks)
        return int(answer.get("task_count", len(tasks)))

    def export_tasks(self, project_id: int) -> list[dict[str, Any]]:
        """Every task of the project with its annotations (Label Studio's JSON export)."""
        query = urllib.parse.urlencode({"exportType": "JSON", "download_all_tasks": "true"})
        return list(self.request("GET", f"/api/projects/{int(project_id)}/export?{query}"))

    def annotate(self, task_id: int, result: list[dict[str, Any]]) -> dict[str, Any]:
        """Submits an annotation of a task as the token's user (what a reviewer's Submit does)."""
        return self.request("POST", f"/api/tasks/{int(task_id)}/annotations/", {"result": result})


class _Expired(Exception):
    """A Bearer access token the server no longer accepts."""
