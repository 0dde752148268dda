#!/bin/sh
# One-shot setup of fireline's Temporal namespace, run by the temporal-init service in
# docker-compose.yml (temporalio/admin-tools image) and usable by hand against any cluster:
#
#   TEMPORAL_ADDRESS=temporal.example.com:7233 FIRELINE_NAMESPACE=fireline \
#       sh deploy/compose/temporal-init.sh
#
# It creates the namespace if missing, sets its retention (closed incidents are the record;
# Temporal deletes them after this long) and registers the search attributes every incident
# keeps. Safe to run again: what exists is left alone.
set -eu

ns="${FIRELINE_NAMESPACE:-default}"
retention="${FIRELINE_RETENTION:-3650d}"

# A namespace just created is unknown to some server paths until the namespace cache
# refreshes (about ten seconds), so later steps retry.
retry() {
    tries=0
    until "$@"; do
        tries=$((tries + 1))
        if [ "$tries" -ge 30 ]; then
            echo "temporal-init: gave up: $*" >&2
            return 1
        fi
        sleep 2
    done
}

if temporal operator namespace describe --namespace "$ns" >/dev/null 2>&1; then
    echo "temporal-init: namespace $ns exists; setting retention $retention"
    retry temporal operator namespace update --namespace "$ns" --retention "$retention"
else
    echo "temporal-init: creating namespace $ns with retention $retention"
    temporal operator namespace create --namespace "$ns" --retention "$retention"
fi

# Name and type of every fireline search attribute: workflows/search_attributes.py is the
# source; tests/unit/test_deploy_compose.py fails when this list drifts from it.
retry temporal operator search-attribute list --namespace "$ns" >/dev/null
existing="$(temporal operator search-attribute list --namespace "$ns")"
while read -r name type; do
    if printf '%s\n' "$existing" | grep -qw "$name"; then
        echo "temporal-init: search attribute $name already registered"
    else
        echo "temporal-init: registering search attribute $name ($type)"
        retry temporal operator search-attribute create --namespace "$ns" --name "$name" \
            --type "$type"
    fi
done <<ATTRIBUTES
IncidentStatus Keyword
IncidentSeverity Keyword
IncidentService Keyword
IncidentCommander Keyword
IncidentTeam Keyword
IncidentDeclaredAt Datetime
IncidentAcknowledgedAt Datetime
IncidentResolvedAt Datetime
IncidentMitigatedAtEpoch Int
ATTRIBUTES
echo "temporal-init: done"
