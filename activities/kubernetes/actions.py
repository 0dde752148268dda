"""Kubernetes runbook actions as Temporal activities, bound to one cluster's credentials.

Activities for a cluster run on that cluster's task queue, so a worker inside each cluster
holds its own credentials; :class:`KubernetesActions` is therefore built for one cluster::

    actions = KubernetesActions.for_cluster("eu-1", config.clusters["eu-1"])
    actions.connect()                       # fail at start-up, not during an incident
    Worker(client, task_queue=config.clusters["eu-1"].queue("eu-1"),
           activities=actions.activities(), ...)

Every action takes an :class:`ActionRequest` and returns an :class:`ActionResult`; its
``with:`` inputs are validated by the models in ``activities.kubernetes.inputs``. Outputs:

- ``k8s.status``: revision, image, images, replicas, current_replicas, ready, updated,
  available, unavailable, generation, observed_generation, paused, rollout (kubectl's
  words), rollout_phase, change_cause, conditions, events, and previous_revision /
  previous_image when an older ReplicaSet exists;
- ``k8s.rollback``: revision (the Deployment's revision after the controller acted),
  rolled_back_to (the revision restored, as numbered when it was deployed), image, images,
  previous_revision / previous_image (what this attempt found; equal to revision on a no-op);
- ``k8s.scale``: replicas, previous_replicas;
- ``k8s.restart``: revision, previous_revision, restarted_at, restart_key, image;
- ``k8s.wait_rollout``: phase, message, revision, replicas, updated, available,
  current_replicas, deadline_at (also the heartbeat details);
- ``k8s.cordon``: node, unschedulable, was_unschedulable;
- ``k8s.recent_changes``: since, count, truncated, changes (newest first: namespace,
  deployment, revision, image, images, time, change_cause, current). Actions are
declarative and check before acting, so a retry after success changes nothing and reports
``changed=False``; a dry run reads the current state and says what it would do.

The official client is synchronous: every API call runs in ``asyncio.to_thread`` (the
default executor's threads), and only heartbeats, sleeps and pure decisions run on the event
loop. Failures are the classified errors of ``activities.kubernetes.errors``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import JsonValue
from temporalio import activity

from activities.contracts import ActionRequest, ActionResult
from activities.kubernetes.api import KubeApi
from activities.kubernetes.clusters import ClusterConfig, ClusterConfigError, build_api_client
from activities.kubernetes.errors import (
    DeploymentPaused,
    KubernetesConflict,
    KubernetesPermanentError,
    RolloutDeadlineExceeded,
    RolloutFailed,
    RolloutNotObserved,
)
from activities.kubernetes.inputs import (
    CordonInputs,
    DeploymentInputs,
    RecentChangesInputs,
    RestartInputs,
    RollbackInputs,
    ScaleInputs,
    StatusInputs,
    WaitRolloutInputs,
    parse_inputs,
    since_time,
)
from activities.kubernetes.objects import (
    CHANGE_CAUSE,
    RESTARTED_AT,
    Obj,
    annotations_of,
    controller_ref,
    controller_uid,
    first_image,
    images,
    metadata,
    name_of,
    owned_by,
    parse_time,
    revision_of,
    same_template,
    selector_text,
    template_of,
)
from activities.kubernetes.rollback import (
    Target,
    previous_revision,
    resolve_target,
    rollback_patch,
)
from activities.kubernetes.rollout import Phase, RolloutState, rollout_state
from workflows.durations import format_duration

logger = logging.getLogger(__name__)

ACTION_NAMES: tuple[str, ...] = (
    "k8s.status",
    "k8s.rollback",
    "k8s.scale",
    "k8s.restart",
    "k8s.wait_rollout",
    "k8s.cordon",
    "k8s.recent_changes",
)
"""The activity names runbook ``action`` steps use, in the order of :meth:`activities`."""

# Pod-template annotation carrying the idempotency key of the restart that wrote it.
RESTART_KEY = "fireline.dev/restart-key"
# Two writers racing on one Deployment settle within a couple of fresh reads.
_CONFLICT_ATTEMPTS = 3
# Most rollouts k8s.recent_changes reports; more would bloat the incident's history.
_MAX_CHANGES = 100

T = TypeVar("T")
# This activity's latest heartbeat details: each activity runs in its own asyncio task, so
# the context variable is the activity's own.
_LAST_BEAT: ContextVar[tuple[Any, ...]] = ContextVar("fireline_k8s_last_beat", default=())


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _timestamp(moment: datetime) -> str:
    # The apiserver's own format (RFC 3339, UTC, whole seconds), as kubectl writes it too.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class _Decision:
    """A read-decide-write round: the object as read, and as written (None: no write)."""

    before: Obj
    written: Obj | None
    # Whether a write was (or, in a dry run, would have been) needed.
    needed: bool


class KubernetesActions:
    """The ``k8s.*`` runbook actions for one cluster."""

    def __init__(
        self,
        api_client_factory: Callable[[], Any],
        *,
        poll_interval: float = 2.0,
        settle_timeout: float = 60.0,
        request_timeout: float = 30.0,
        heartbeat_every: float = 10.0,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        """Bind to the cluster ``api_client_factory`` connects to (called once, lazily).

        ``poll_interval`` paces rollout polling; ``settle_timeout`` bounds the wait for the
        Deployment controller to observe a change this action made; ``heartbeat_every``
        paces heartbeats while an API call is slow (well inside the runbook's 30 s heartbeat
        timeout); ``clock`` is wall time.
        """
        self._factory = api_client_factory
        self._poll_interval = poll_interval
        self._settle_timeout = settle_timeout
        self._request_timeout = request_timeout
        self._heartbeat_every = heartbeat_every
        self._clock = clock
        self._api: KubeApi | None = None
        self._lock = threading.Lock()

    @classmethod
    def for_cluster(cls, name: str, cluster: ClusterConfig, **options: Any) -> KubernetesActions:
        """Actions for the named cluster of fireline.yaml, with its own credentials."""
        return cls(functools.partial(build_api_client, cluster, name=name), **options)

    def connect(self) -> None:
        """Build the API client now; raises ``ClusterConfigError`` when it cannot be."""
        self._kube()

    def activities(self) -> list[Callable[[ActionRequest], Any]]:
        """The bound activity callables, in the order of :data:`ACTION_NAMES`."""
        return [
            self.status,
            self.rollback,
            self.scale,
            self.restart,
            self.wait_rollout,
            self.cordon,
            self.recent_changes,
        ]

    # --- k8s.status ------------------------------------------------------------------------

    @activity.defn(name="k8s.status")
    async def status(self, request: ActionRequest) -> ActionResult:
        """Revision, images, replica counts, conditions and recent events of a Deployment."""
        inputs = parse_inputs("k8s.status", StatusInputs, request)
        output = await self._run(lambda api: _status_output(api, inputs))
        where = f"{inputs.namespace}/{inputs.deployment}"
        summary = (
            f"{where} is on revision {output['revision']} ({output['image']}): "
            f"{output['available']}/{output['replicas']} available; {output['rollout']}"
        )
        return ActionResult(output=output, summary=summary, dry_run=request.dry_run)

    # --- k8s.rollback ----------------------------------------------------------------------

    @activity.defn(name="k8s.rollback")
    async def rollback(self, request: ActionRequest) -> ActionResult:
        """Restore an earlier revision's pod template, as ``kubectl rollout undo`` does."""
        inputs = parse_inputs("k8s.rollback", RollbackInputs, request)
        where = f"{inputs.namespace}/{inputs.deployment}"
        resolved: list[Target] = []

        def decide(api: KubeApi, deployment: Obj) -> list[Obj] | None:
            if (deployment.get("spec") or {}).get("paused"):
                raise DeploymentPaused(
                    f"deployment {where} is paused; resume it before rolling back "
                    "(a paused Deployment would not roll out the restored template)"
                )
            replica_sets = _owned_replica_sets(api, deployment)
            target = resolve_target(
                f"deployment {where}",
                replica_sets,
                to_revision=inputs.to_revision,
                from_revision=inputs.from_revision,
            )
            resolved[:] = [target]
            if same_template(template_of(target.replica_set), template_of(deployment)):
                return None
            return rollback_patch(deployment, target.replica_set)

        decision = await self._run(
            lambda api: _read_decide_write(api, inputs, decide, dry_run=request.dry_run)
        )
        target = resolved[0]
        before = decision.before
        target_image = first_image(target.replica_set)
        output: dict[str, JsonValue] = {
            "namespace": inputs.namespace,
            "deployment": inputs.deployment,
            "rolled_back_to": target.revision,
            "previous_revision": revision_of(before),
            "previous_image": first_image(before),
            "image": target_image,
            "images": dict(images(target.replica_set)),
        }
        if request.dry_run:
            output["revision"] = revision_of(before)
            if not decision.needed:
                summary = f"{where} already runs the template of revision {target.revision}"
            else:
                summary = (
                    f"Would roll back {where} from revision {revision_of(before)} "
                    f"({first_image(before)}) to revision {target.revision} ({target_image})"
                )
            return ActionResult(output=output, summary=summary, dry_run=True)
        settled = await self._settle(inputs, decision)
        output["revision"] = revision_of(settled)
        if not decision.needed:
            summary = (
                f"{where} already runs the template of revision {target.revision} "
                f"({target_image}) as revision {revision_of(settled)}; nothing to do"
            )
            return ActionResult(output=output, summary=summary)
        summary = (
            f"Rolled back {where} from revision {revision_of(before)} ({first_image(before)}) "
            f"to revision {target.revision} ({target_image}); now revision {revision_of(settled)}"
        )
        return ActionResult(output=output, summary=summary, changed=True)

    # --- k8s.scale -------------------------------------------------------------------------

    @activity.defn(name="k8s.scale")
    async def scale(self, request: ActionRequest) -> ActionResult:
        """Hold a Deployment at a replica count (a target, so retries are harmless)."""
        inputs = parse_inputs("k8s.scale", ScaleInputs, request)
        where = f"{inputs.namespace}/{inputs.deployment}"

        def apply(api: KubeApi) -> tuple[int, bool]:
            current = int(
                (api.get_scale(inputs.namespace, inputs.deployment).get("spec") or {}).get(
                    "replicas", 0
                )
            )
            if current == inputs.replicas or request.dry_run:
                return current, False
            api.patch_scale(inputs.namespace, inputs.deployment, inputs.replicas)
            return current, True

        current, changed = await self._run(apply)
        output: dict[str, JsonValue] = {
            "namespace": inputs.namespace,
            "deployment": inputs.deployment,
            "replicas": inputs.replicas,
            "previous_replicas": current,
        }
        if current == inputs.replicas:
            summary = f"{where} already has {current} replicas; nothing to do"
        elif request.dry_run:
            summary = f"Would scale {where} from {current} to {inputs.replicas} replicas"
        else:
            summary = f"Scaled {where} from {current} to {inputs.replicas} replicas"
        return ActionResult(
            output=output, summary=summary, changed=changed, dry_run=request.dry_run
        )

    # --- k8s.restart -----------------------------------------------------------------------

    @activity.defn(name="k8s.restart")
    async def restart(self, request: ActionRequest) -> ActionResult:
        """``kubectl rollout restart``, once per idempotency key."""
        inputs = parse_inputs("k8s.restart", RestartInputs, request)
        where = f"{inputs.namespace}/{inputs.deployment}"
        key = request.idempotency_key
        restarted_at = _timestamp(self._clock())

        def decide(api: KubeApi, deployment: Obj) -> Obj | None:
            if (deployment.get("spec") or {}).get("paused"):
                raise DeploymentPaused(
                    f"deployment {where} is paused; resume it before restarting "
                    "(a paused Deployment would not roll out the restart)"
                )
            template_annotations = (template_of(deployment).get("metadata") or {}).get(
                "annotations"
            ) or {}
            if template_annotations.get(RESTART_KEY) == key:
                return None
            return {
                # resourceVersion is a precondition: a concurrent attempt of the same restart
                # that wrote first makes this one re-read, see the key and stop.
                "metadata": {"resourceVersion": metadata(deployment).get("resourceVersion")},
                "spec": {
                    "template": {
                        "metadata": {"annotations": {RESTARTED_AT: restarted_at, RESTART_KEY: key}}
                    }
                },
            }

        decision = await self._run(
            lambda api: _read_decide_write(api, inputs, decide, dry_run=request.dry_run)
        )
        before = decision.before
        output: dict[str, JsonValue] = {
            "namespace": inputs.namespace,
            "deployment": inputs.deployment,
            "restart_key": key,
            "previous_revision": revision_of(before),
            "image": first_image(before),
        }
        already = _template_annotation(before, RESTART_KEY) == key
        if request.dry_run:
            output["revision"] = revision_of(before)
            summary = (
                f"{where} was already restarted for this step"
                if already
                else f"Would restart {where} (revision {revision_of(before)})"
            )
            return ActionResult(output=output, summary=summary, dry_run=True)
        settled = await self._settle(inputs, decision)
        output["revision"] = revision_of(settled)
        output["restarted_at"] = _template_annotation(settled, RESTARTED_AT)
        if already:
            summary = (
                f"{where} was already restarted for this step at "
                f"{output['restarted_at']}; nothing to do"
            )
            return ActionResult(output=output, summary=summary)
        summary = f"Restarted {where}: revision {revision_of(before)} -> {revision_of(settled)}"
        return ActionResult(output=output, summary=summary, changed=True)

    # --- k8s.wait_rollout ------------------------------------------------------------------

    @activity.defn(name="k8s.wait_rollout")
    async def wait_rollout(self, request: ActionRequest) -> ActionResult:
        """Poll a rollout like ``kubectl rollout status`` until done, failed or too late."""
        inputs = parse_inputs("k8s.wait_rollout", WaitRolloutInputs, request)
        where = f"{inputs.namespace}/{inputs.deployment}"
        # A retried attempt (worker restart) keeps the first attempt's deadline.
        deadline_at = _resumed_deadline() or self._clock() + inputs.deadline
        while True:
            deployment = await self._run(
                lambda api: api.get_deployment(inputs.namespace, inputs.deployment)
            )
            state = rollout_state(deployment, inputs.revision)
            progress = _progress(where, state, deadline_at)
            self._beat(progress)
            if request.dry_run:
                summary = (
                    f"Would wait up to {format_duration(inputs.deadline)} for {where}; "
                    f"now: {state.message}"
                )
                return ActionResult(output=progress, summary=summary, dry_run=True)
            if state.phase is Phase.FAILED:
                raise RolloutFailed(f"rollout of {where} failed: {state.message}", progress)
            if state.phase is Phase.COMPLETE:
                return ActionResult(output=progress, summary=f"{where}: {state.message}")
            remaining = (deadline_at - self._clock()).total_seconds()
            if remaining <= 0:
                raise RolloutDeadlineExceeded(
                    f"rollout of {where} did not finish within "
                    f"{format_duration(inputs.deadline)}: {state.message}",
                    progress,
                )
            await asyncio.sleep(min(self._poll_interval, remaining))

    # --- k8s.cordon ------------------------------------------------------------------------

    @activity.defn(name="k8s.cordon")
    async def cordon(self, request: ActionRequest) -> ActionResult:
        """Mark a node unschedulable (``kubectl cordon``)."""
        inputs = parse_inputs("k8s.cordon", CordonInputs, request)

        def apply(api: KubeApi) -> bool:
            node = api.get_node(inputs.node)
            if (node.get("spec") or {}).get("unschedulable") or request.dry_run:
                return bool((node.get("spec") or {}).get("unschedulable"))
            api.patch_node(inputs.node, {"spec": {"unschedulable": True}})
            return False

        was_cordoned = await self._run(apply)
        output: dict[str, JsonValue] = {
            "node": inputs.node,
            "unschedulable": True,
            "was_unschedulable": was_cordoned,
        }
        if was_cordoned:
            return ActionResult(
                output=output,
                summary=f"node {inputs.node} is already cordoned; nothing to do",
                dry_run=request.dry_run,
            )
        if request.dry_run:
            output["unschedulable"] = False
            return ActionResult(
                output=output, summary=f"Would cordon node {inputs.node}", dry_run=True
            )
        return ActionResult(output=output, summary=f"Cordoned node {inputs.node}", changed=True)

    # --- k8s.recent_changes ----------------------------------------------------------------

    @activity.defn(name="k8s.recent_changes")
    async def recent_changes(self, request: ActionRequest) -> ActionResult:
        """Deployment rollouts in some namespaces since a time: the triage "what changed"."""
        inputs = parse_inputs("k8s.recent_changes", RecentChangesInputs, request)
        since = since_time(inputs.since, self._clock())
        changes = await self._run(lambda api: _recent_changes(api, inputs.namespaces, since))
        places = ", ".join(inputs.namespaces)
        latest = (
            f"; latest {changes[0]['namespace']}/{changes[0]['deployment']} revision "
            f"{changes[0]['revision']} ({changes[0]['image']}) at {changes[0]['time']}"
            if changes
            else ""
        )
        summary = f"{len(changes)} rollouts in {places} since {_timestamp(since)}{latest}"
        output: dict[str, JsonValue] = {
            "since": _timestamp(since),
            "count": len(changes),
            # The newest ones: the result is recorded in history and shown in triage.
            "changes": list(changes[:_MAX_CHANGES]),
            "truncated": len(changes) > _MAX_CHANGES,
        }
        return ActionResult(output=output, summary=summary, dry_run=request.dry_run)

    # --- plumbing --------------------------------------------------------------------------

    def _kube(self) -> KubeApi:
        with self._lock:
            if self._api is None:
                self._api = KubeApi(self._factory(), request_timeout=self._request_timeout)
            return self._api

    async def _run(self, call: Callable[[KubeApi], T]) -> T:
        def in_thread() -> T:
            try:
                api = self._kube()
            except ClusterConfigError as exc:
                raise KubernetesPermanentError(str(exc)) from None
            return call(api)

        # The runbook gives every k8s step a heartbeat timeout, so a worker that dies
        # mid-step is noticed in seconds instead of at the step's timeout; a slow API call
        # must therefore keep beating, with the step's latest progress (wait_rollout resumes
        # its deadline from it).
        call_done = asyncio.ensure_future(asyncio.to_thread(in_thread))
        while not (await asyncio.wait({call_done}, timeout=self._heartbeat_every))[0]:
            activity.heartbeat(*_LAST_BEAT.get())
        return call_done.result()

    @staticmethod
    def _beat(details: dict[str, JsonValue]) -> None:
        """Heartbeat ``details`` and remember them for the beats of a slow call."""
        _LAST_BEAT.set((details,))
        activity.heartbeat(details)

    async def _settle(self, inputs: DeploymentInputs, decision: _Decision) -> Obj:
        """The Deployment once its controller has observed the generation we left it at."""
        expected = int(metadata(decision.written or decision.before).get("generation") or 0)
        deadline = time.monotonic() + self._settle_timeout
        while True:
            deployment = await self._run(
                lambda api: api.get_deployment(inputs.namespace, inputs.deployment)
            )
            observed = int((deployment.get("status") or {}).get("observedGeneration") or 0)
            self._beat({"waiting_for": "controller", "generation": expected, "observed": observed})
            if observed >= expected:
                return deployment
            if time.monotonic() >= deadline:
                raise RolloutNotObserved(
                    f"deployment {inputs.namespace}/{inputs.deployment}: the controller has "
                    f"not observed generation {expected} within {self._settle_timeout:g}s "
                    f"(observed {observed}); is kube-controller-manager running?"
                )
            await asyncio.sleep(self._poll_interval)


def _read_decide_write(
    api: KubeApi,
    inputs: DeploymentInputs,
    decide: Callable[[KubeApi, Obj], Any],
    *,
    dry_run: bool,
) -> _Decision:
    """Read the Deployment, ask ``decide`` for a patch (None: nothing to do), apply it.

    A 409 (someone wrote between our read and our write) starts over from a fresh read,
    so the decision is always made on the state the patch applies to.
    """
    for attempt in range(_CONFLICT_ATTEMPTS):
        deployment = api.get_deployment(inputs.namespace, inputs.deployment)
        patch = decide(api, deployment)
        if patch is None or dry_run:
            return _Decision(deployment, None, needed=patch is not None)
        try:
            written = api.patch_deployment(inputs.namespace, inputs.deployment, patch)
        except KubernetesConflict:
            if attempt + 1 == _CONFLICT_ATTEMPTS:
                raise
            logger.info("deployment %s/%s changed; re-reading", inputs.namespace, inputs.deployment)
            continue
        return _Decision(deployment, written, needed=True)
    raise AssertionError("unreachable: the last conflict is re-raised")


def _owned_replica_sets(api: KubeApi, deployment: Obj) -> list[Obj]:
    # kubectl's GetAllReplicaSets: list by the Deployment's selector, keep what it controls.
    selector = selector_text((deployment.get("spec") or {}).get("selector"))
    found = api.list_replica_sets(str(metadata(deployment).get("namespace", "")), selector)
    return owned_by(found, deployment)


def _template_annotation(deployment: Obj, key: str) -> str:
    found = ((template_of(deployment).get("metadata") or {}).get("annotations") or {}).get(key)
    return str(found or "")


def _status_output(api: KubeApi, inputs: StatusInputs) -> dict[str, JsonValue]:
    deployment = api.get_deployment(inputs.namespace, inputs.deployment)
    replica_sets = _owned_replica_sets(api, deployment)
    events: list[JsonValue] = []
    if inputs.events:
        rs_uids = {metadata(rs).get("uid") for rs in replica_sets}
        selector = selector_text((deployment.get("spec") or {}).get("selector"))
        pods = [
            p for p in api.list_pods(inputs.namespace, selector) if controller_uid(p) in rs_uids
        ]
        involved = [deployment, *replica_sets, *pods]
        events = list(_recent_events(api.list_events(inputs.namespace), involved, inputs.events))
    state = rollout_state(deployment)
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    output: dict[str, JsonValue] = {
        "namespace": inputs.namespace,
        "deployment": inputs.deployment,
        "revision": revision_of(deployment),
        "image": first_image(deployment),
        "images": dict(images(deployment)),
        "replicas": int(spec.get("replicas", 1)),
        "current_replicas": int(status.get("replicas") or 0),
        "ready": int(status.get("readyReplicas") or 0),
        "updated": int(status.get("updatedReplicas") or 0),
        "available": int(status.get("availableReplicas") or 0),
        "unavailable": int(status.get("unavailableReplicas") or 0),
        "generation": int(metadata(deployment).get("generation") or 0),
        "observed_generation": int(status.get("observedGeneration") or 0),
        "paused": bool(spec.get("paused", False)),
        "rollout": state.message,
        "rollout_phase": state.phase.value,
        "change_cause": annotations_of(deployment).get(CHANGE_CAUSE, ""),
        "conditions": [
            {
                "type": str(c.get("type", "")),
                "status": str(c.get("status", "")),
                "reason": str(c.get("reason", "")),
                "message": str(c.get("message", "")),
                "last_update_time": str(c.get("lastUpdateTime", "")),
            }
            for c in status.get("conditions") or []
        ],
        "events": events,
    }
    previous = previous_revision(deployment, replica_sets)
    if previous is not None:
        output["previous_revision"] = revision_of(previous)
        output["previous_image"] = first_image(previous)
    return output


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _event_time(event: Obj) -> datetime:
    # core/v1 Events written by old recorders fill lastTimestamp; new ones only eventTime.
    for key in ("lastTimestamp", "eventTime", "firstTimestamp"):
        moment = parse_time(event.get(key))
        if moment is not None:
            return moment
    return parse_time(metadata(event).get("creationTimestamp")) or _EPOCH


def _event_order(event: Obj) -> tuple[datetime, int]:
    # Timestamps have whole seconds, so many events tie; the resourceVersion (opaque, but a
    # cluster-wide counter on etcd-backed apiservers) puts the latest write of a tie last.
    version = str(metadata(event).get("resourceVersion", ""))
    return _event_time(event), int(version) if version.isdigit() else 0


def _recent_events(events: list[Obj], involved: list[Obj], limit: int) -> list[JsonValue]:
    """The last ``limit`` events about ``involved`` objects, oldest first."""
    uids = {metadata(o).get("uid") for o in involved if metadata(o).get("uid")}
    names = {(str(o.get("kind", "")), name_of(o)) for o in involved}

    def about(event: Obj) -> bool:
        ref = event.get("involvedObject") or {}
        if ref.get("uid"):
            return ref["uid"] in uids
        return (str(ref.get("kind", "")), str(ref.get("name", ""))) in names

    chosen = sorted((e for e in events if about(e)), key=_event_order)[-limit:]
    return [
        {
            "time": _timestamp(_event_time(e)),
            "type": str(e.get("type", "")),
            "reason": str(e.get("reason", "")),
            "object": f"{(e.get('involvedObject') or {}).get('kind', '')}/"
            f"{(e.get('involvedObject') or {}).get('name', '')}",
            "message": str(e.get("message", "")),
            "count": int(e.get("count") or 1),
        }
        for e in chosen
    ]


def _recent_changes(
    api: KubeApi, namespaces: list[str], since: datetime
) -> list[dict[str, JsonValue]]:
    changes: list[tuple[datetime, int, dict[str, JsonValue]]] = []
    for namespace in namespaces:
        deployments = {metadata(d).get("uid"): d for d in api.list_deployments(namespace)}
        for rs in api.list_replica_sets(namespace):
            ref = controller_ref(rs)
            if ref is None or ref.get("kind") != "Deployment":
                continue
            created = parse_time(metadata(rs).get("creationTimestamp"))
            if created is None or created < since:
                continue
            owner = deployments.get(ref.get("uid"))
            changes.append(
                (
                    created,
                    revision_of(rs),
                    {
                        "namespace": namespace,
                        "deployment": str(ref.get("name", "")),
                        "revision": revision_of(rs),
                        "image": first_image(rs),
                        "images": dict(images(rs)),
                        "time": _timestamp(created),
                        "change_cause": annotations_of(rs).get(CHANGE_CAUSE, ""),
                        "current": owner is not None and revision_of(owner) == revision_of(rs),
                    },
                )
            )
    # Newest first: the most recent change is the likeliest suspect.
    changes.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [change for _, _, change in changes]


def _progress(where: str, state: RolloutState, deadline_at: datetime) -> dict[str, JsonValue]:
    return {
        "deployment": where,
        "phase": state.phase.value,
        "message": state.message,
        "revision": state.revision,
        "replicas": state.desired,
        "updated": state.updated,
        "available": state.available,
        "current_replicas": state.replicas,
        "deadline_at": _timestamp(deadline_at),
    }


def _resumed_deadline() -> datetime | None:
    for detail in activity.info().heartbeat_details:
        if isinstance(detail, Mapping):
            moment = parse_time(detail.get("deadline_at"))
            if moment is not None:
                return moment
    return None
