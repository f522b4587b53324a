"""Server DTOs parse what InvokeAI really sends, old and new, and keep what they don't know."""

from __future__ import annotations

from datetime import datetime, timezone

from invokeai_client.types import (
    EnqueueBatchResult,
    QueueAndProcessorStatus,
    SessionQueueItem,
    parse_timestamp,
)


def test_timestamps_of_every_server_format_are_read_as_utc() -> None:
    want = datetime(2026, 11, 26, 6, 22, 36, 713000, tzinfo=timezone.utc)
    assert parse_timestamp("2026-11-26 06:22:36.713") == want
    assert parse_timestamp("2026-11-26T06:22:36.713000") == want
    assert parse_timestamp("2026-11-26T06:22:36.713Z") == want
    assert parse_timestamp("2026-11-26 06:22:36") == want.replace(microsecond=0)
    assert parse_timestamp("2026-11-26 06:22:36.7") == want.replace(microsecond=700000)
    assert parse_timestamp(int(want.timestamp())) == want.replace(microsecond=0)
    assert parse_timestamp("not a date") is None
    assert parse_timestamp(None) is None


def test_queue_item_with_nulls_omitted_parses_and_reads_node_outputs() -> None:
    # GET /queue/default/i/{id} omits null fields (response_model_exclude_none).
    item = SessionQueueItem.model_validate(
        {
            "item_id": 342, "status": "completed", "status_sequence": 2, "priority": 0,
            "batch_id": "b1", "session_id": "s1", "queue_id": "default",
            "created_at": "2026-11-26 06:30:01.040", "updated_at": "2026-11-26 06:30:01.557",
            "completed_at": "2026-11-26 06:30:01.557", "field_values": [],
            "some_future_field": {"x": 1},
            "session": {
                "results": {"p1": {"value": 3, "type": "integer_output"}},
                "source_prepared_mapping": {"a": ["p1"]},
            },
        }
    )
    assert item.is_terminal
    assert item.error_type is None
    assert item.workflow is None
    assert item.completed_at is not None
    assert item.completed_at.tzinfo is timezone.utc
    assert item.outputs_of("a") == [{"value": 3, "type": "integer_output"}]
    assert item.outputs_of("missing") == []
    assert item.model_extra == {"some_future_field": {"x": 1}}


def test_status_and_enqueue_result_shapes() -> None:
    status = QueueAndProcessorStatus.model_validate(
        {"queue": {"queue_id": "default", "item_id": None, "pending": 2, "completed": 3,
                   "total": 5}, "processor": {"is_started": False, "is_processing": False}}
    )
    assert status.queue.pending == 2
    assert status.queue.done == 3
    assert status.queue.waiting == 0  # absent before 6.14
    assert not status.processor.is_started
    result = EnqueueBatchResult.model_validate(
        {"queue_id": "default", "enqueued": 3, "requested": 3, "priority": 0,
         "batch": {"batch_id": "b9", "runs": 3}, "item_ids": [11, 10, 9]}
    )
    assert result.batch_id == "b9"
    assert result.item_ids_ascending == [9, 10, 11]
