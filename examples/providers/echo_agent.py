#!/usr/bin/env python3
"""An example agentbus provider (protocol version 1, docs/orchestration.md): a rule agent.

It reads one request on stdin and prints one reply on stdout. Rules, by the agent's role:
  * a role containing "review": approves (a reply whose last line is "VERDICT: APPROVED") when
    the text under review contains the word in $APPROVE_WHEN (default "final"), else asks for
    a revision ("VERDICT: REVISE");
  * anything else: echoes what the previous agent said (or the task), prefixed with its id; on
    feedback it revises the task, and marks a revision "final" from the $FINAL_AFTER'th on
    (default 1);
  * offered the workgroup `finish` tool (a workflow's stage member or leader): finishes with
    status "success" and, as summary, its id and the stage goal it was given.
Try it: echo '{"version":1,"agent":{"id":"a","role":"writer"},"messages":[{"role":"user","content":"hi"}]}' | ./echo_agent.py
"""
import json
import os
import sys


def main() -> int:
    try:
        request = json.load(sys.stdin)
    except json.JSONDecodeError as err:
        print(f"echo_agent: bad request: {err}", file=sys.stderr)
        return 2
    if request.get("version") != 1:
        print(f"echo_agent: protocol version {request.get('version')} not spoken", file=sys.stderr)
        return 2
    agent = request.get("agent", {})
    messages = request.get("messages", [])
    latest = messages[-1]["content"] if messages else ""
    finish = [t for t in request.get("tools", [])
              if t.get("name") == "finish" and "status" in t.get("parameters", {}).get("properties", {})]
    if finish:
        lines = latest.splitlines()
        goal = next((l.split(": ", 1)[1] for prefix in ("Stage goal: ", "Goal: ") for l in lines if l.startswith(prefix)), latest)
        summary = f"[{agent.get('id')}] {goal}"
        print(json.dumps({"version": 1, "text": summary,
                          "tool_calls": [{"name": "finish", "arguments": {"status": "success", "summary": summary}}]}))
        return 0
    role = (agent.get("role") or "").lower()
    if "review" in role:
        word = os.environ.get("APPROVE_WHEN", "final")
        verdict = "APPROVED" if word in latest else "REVISE"
        text = f"{agent.get('id')} reviewed: {'looks good' if verdict == 'APPROVED' else 'needs work'}\nVERDICT: {verdict}"
    else:
        # Feedback comes back as further "user" messages: then this is a revision of the task.
        users = [m for m in messages if m.get("role") == "user" and not m.get("content", "").startswith("[Context")]
        revisions = len(users) - 1
        said = [m for m in messages if m.get("role") == "assistant"]
        base = users[0]["content"] if users and (revisions > 0 or not said) else said[-1]["content"] if said else ""
        text = f"[{agent.get('id')}] {base}"
        if revisions > 0:
            text += f" (revision {revisions})"
        if revisions >= int(os.environ.get("FINAL_AFTER", "1")):
            text += " final"
    reply = {"version": 1, "text": text, "tool_calls": [],
             "usage": {"input_tokens": sum(len(m.get("content", "")) for m in messages), "output_tokens": len(text)}}
    print(json.dumps(reply))
    return 0


if __name__ == "__main__":
    sys.exit(main())
