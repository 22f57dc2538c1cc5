"""Vocabulary knowledge from a chat LLM, through the real `openai` client, against a local server
that speaks the chat-completions protocol and answers like a (scripted) chat model."""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from tagllm.prepare.chat import DESCRIPTION_PROMPT, GROUPING_PROMPTS, SUPER_CATEGORY_PROMPT
from tagllm.vocab import builtin_vocabulary, parse_vocabulary
from tests.conftest import run_cli

pytestmark = pytest.mark.integration
VOC = builtin_vocabulary("voc")


class ChatServer(BaseHTTPRequestHandler):
    prompts: list[str] = []
    bad_groupings = 1  # the first grouping answer forgets a category

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert self.path == "/v1/chat/completions" and body["temperature"] == 0
        prompt = body["messages"][-1]["content"]
        ChatServer.prompts.append(prompt)
        reply = json.dumps(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": answer(prompt)},
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


def answer(prompt: str) -> str:
    if prompt.startswith("Based on the co-occurrence"):
        names = re.search(r"Categories: (.*)\.\n", prompt).group(1).split(", ")
        groups = int(re.search(r"into (\d+) groups", prompt).group(1))
        if ChatServer.bad_groupings:
            ChatServer.bad_groupings -= 1
            names = names[1:]
        return "\n".join(f"Group {g + 1}: " + ", ".join(names[g::groups]) for g in range(groups))
    if prompt.startswith("Which super-category"):
        return "Vehicle." if "car" in prompt.split("belong")[0] else "household object"
    if prompt.startswith("Does a category name"):
        return "1. a first phrase\n2. a second phrase\n3. a third phrase\n4. one too many"
    if prompt.startswith("Which categories of the list"):
        listed = re.search(r"List: (.*)\.\n", prompt).group(1).split(", ")
        return ", ".join([*listed[:2], "unicorn"])
    raise AssertionError(prompt)


@pytest.fixture()
def chat_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), ChatServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ChatServer.prompts, ChatServer.bad_groupings = [], 1
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()


def tagllm(*args):
    result = run_cli(*args, env={"PATH": "/usr/bin:/bin", "OPENAI_API_KEY": "test-key"})
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_groups_use_the_papers_prompt_are_validated_and_carry_provenance(chat_url, tmp_path):
    out = tmp_path / "voc.yaml"
    result = tagllm("vocab", "group", "--vocab", "voc", "--chat-url", chat_url, "--chat-model", "fake-4o",
                    "--groups", 4, "--out", out)  # fmt: skip
    assert "attempt 1: the answer leaves 1 categories in no group" in result.stderr
    vocabulary = parse_vocabulary(out.read_text())
    assert len(vocabulary.groups) == 4
    assert sorted(n for g in vocabulary.groups for n in g.categories) == sorted(VOC.names)
    assert vocabulary.provenance["coop_groups"].startswith("chat LLM fake-4o, ")
    assert ChatServer.prompts[0].startswith(GROUPING_PROMPTS["coop"].format(n=20, m=4))
    discp = tmp_path / "voc-discp.yaml"
    tagllm("vocab", "group", "--vocab", out, "--chat-url", chat_url, "--chat-model", "fake-4o",
           "--groups", 4, "--discp", "--out", discp)  # fmt: skip
    assert ChatServer.prompts[-1].startswith(GROUPING_PROMPTS["discp"].format(n=20, m=4))
    assert len(parse_vocabulary(discp.read_text()).partitions["discp"]) == 4


def test_concepts_use_the_papers_prompts_and_keep_only_vocabulary_names(chat_url, tmp_path):
    out = tmp_path / "voc.yaml"
    tagllm(
        "vocab", "concepts", "--vocab", "voc", "--chat-url", chat_url, "--chat-model", "fake-4o", "--out", out
    )
    vocabulary = parse_vocabulary(out.read_text())
    car = vocabulary.category("car")
    assert car.super_category == "Vehicle"
    assert car.descriptions == ("a first phrase", "a second phrase", "a third phrase")
    assert len(car.similar) == 2 and set(car.similar) <= set(VOC.names) and "car" not in car.similar
    assert all(c.provenance.startswith("chat LLM fake-4o") for c in vocabulary.categories)
    assert any(p.startswith(SUPER_CATEGORY_PROMPT.format(name="car")) for p in ChatServer.prompts)
    assert any(p.startswith(DESCRIPTION_PROMPT.format(name="car")) for p in ChatServer.prompts)
    assert yaml.safe_load(out.read_text())["provenance"]["concepts"].startswith("chat LLM fake-4o")
