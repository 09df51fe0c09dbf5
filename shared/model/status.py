"""States of runs and jobs, sync passes and per-record results, and the job counters — once.

StrEnums: they compare equal to and serialize as their values, which is what Table Storage, the HTTP
API and the portal hold.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    AWAITING_DECISION = "AwaitingDecision"  # a full sync asks whether to keep syncing all records
    SUCCEEDED = "Succeeded"
    FINISHED_WITH_ERRORS = "FinishedWithErrors"  # every job finished, some records failed
    FAILED = "Failed"  # a job could not run to its end
    CANCELLED = "Cancelled"


class RunKind(StrEnum):
    FULL = "full"
    MODIFIED = "modified"
    MAPPING = "mapping"  # one mapping, modified or full
    RECORDS = "records"  # a record action (couple, create, sync selected, match, ribbon)
    COUPLING = "coupling"  # match-based coupling of a whole mapping, in the background (BC's Coupling job)
    UNCOUPLING = "uncoupling"  # removing every coupling of a mapping, in the background


class JobStatus(StrEnum):
    PENDING = "Pending"
    WAITING = "Waiting"  # for its dependencies
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FINISHED_WITH_ERRORS = "FinishedWithErrors"
    NOT_CONFIGURED = "NotConfigured"  # BC has no API root for the entity (never a failure)
    FAILED = "Failed"
    CANCELLED = "Cancelled"


RUN_ACTIVE = (RunStatus.PENDING, RunStatus.RUNNING)
RUN_FINISHED = (RunStatus.SUCCEEDED, RunStatus.FINISHED_WITH_ERRORS, RunStatus.FAILED, RunStatus.CANCELLED)
JOB_TERMINAL = (
    JobStatus.SUCCEEDED,
    JobStatus.FINISHED_WITH_ERRORS,
    JobStatus.NOT_CONFIGURED,
    JobStatus.FAILED,
    JobStatus.CANCELLED,
)
# A dependency in these states lets its dependents run (BC runs them after a job with failed records too).
JOB_DONE = (JobStatus.SUCCEEDED, JobStatus.FINISHED_WITH_ERRORS, JobStatus.NOT_CONFIGURED)


class Pass(StrEnum):
    TO_CRM = "to_crm"
    FROM_CRM = "from_crm"


class CouplingResult(StrEnum):
    """A coupling's last sync, as stored with it."""

    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"  # failed the same way twice: in Skipped Records


class Result(StrEnum):
    """What happened to one source record (one outcome per record)."""

    INSERTED = "inserted"
    MODIFIED = "modified"
    DELETED = "deleted"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"  # in Skipped Records (failed the same way twice)
    LEFT_OUT = "left_out"  # uncoupled, and the mapping syncs only coupled records
    FAILED = "failed"
    COUPLED = "coupled"
    UNCOUPLED = "uncoupled"
    NO_MATCH = "no_match"


# Per pass, what a job reports; they add up to the records it read.
COUNTERS = (
    Result.INSERTED,
    Result.MODIFIED,
    Result.DELETED,
    Result.UNCHANGED,
    Result.SKIPPED,
    Result.LEFT_OUT,
    Result.FAILED,
    Result.COUPLED,
    Result.UNCOUPLED,
)


class Recommendation(StrEnum):
    """What the Full Synchronization Review proposes for a mapping (BC's "Initial Synch Recommendation")."""

    FULL_SYNC = "FullSynchronization"  # one side is empty: create the counterparts
    COUPLE_RECORDS = "CoupleRecords"  # both sides hold data: match-based coupling, not creation
    NO_RECORDS = "NoRecordsFound"  # nothing to synchronize now


class ReviewStatus(StrEnum):
    """How the last full synchronization of a mapping went in one direction (BC's review line)."""

    NONE = ""  # never run
    IN_PROCESS = "InProcess"
    SUCCESS = "Success"
    ERROR = "Error"  # the job failed or some records failed
