from celery import shared_task

from execution.testcall import SOFT_TIME_LIMIT_SECONDS, TIME_LIMIT_SECONDS, run_test_call

# At most once (SECURITY.md §5): a test call really reaches the customer's API, and a
# POST or DELETE sent twice changes data twice. So the task is acknowledged as soon as
# a worker takes it (never acks_late, whose redelivery after a lost worker would send
# again) and never retried; run_test_call refuses a second delivery on its own too.
# The limits sit just past the call's own 60 s deadline.


@shared_task(
    acks_late=False,
    ignore_result=True,
    soft_time_limit=SOFT_TIME_LIMIT_SECONDS,
    time_limit=TIME_LIMIT_SECONDS,
)
def run_test_call_task(test_call_id: int) -> None:
    run_test_call(test_call_id)
