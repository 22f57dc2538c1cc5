"""Service log lines of servers run in-process by the tests reach pytest's log capture (shown with
a failing test), never the terminal between pytest's dots."""

import logging
import threading

from services.common.logs import get_logger


def test_a_server_threads_log_line_is_a_logging_record_and_not_printed(caplog, capfd):
    caplog.set_level(logging.INFO)
    thread = threading.Thread(target=lambda: get_logger("gateway").info("rpc", code="CANCELLED"))
    thread.start()
    thread.join()
    (record,) = [r for r in caplog.records if r.name == "gateway"]
    assert "rpc" in record.getMessage() and "code=CANCELLED" in record.getMessage()
    assert capfd.readouterr() == ("", "")
