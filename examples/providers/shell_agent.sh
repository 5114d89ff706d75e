#!/bin/sh
# An example agentbus provider in plain sh (protocol version 1, docs/orchestration.md).
# It reads the request, takes the agent's id and the step from it, and answers with one line
# of text. No jq needed: the request's "agent" object comes first, so its first "id" is ours.
request=$(cat)
id=$(printf '%s' "$request" | sed -n 's/.*"agent":{"id":"\([^"]*\)".*/\1/p')
step=$(printf '%s' "$request" | sed -n 's/.*"step":\([0-9]*\).*/\1/p')
printf '{"version":1,"text":"%s handled step %s"}\n' "${id:-unknown}" "${step:-?}"
