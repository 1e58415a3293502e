"""An MCP client (the official Python SDK, `mcp`) against FrameOS's `POST /mcp` (API.md §5.4).

It lists the tools (the published agents), calls a paid one as the given user, and checks the
answer: the agent's output as structured content, the same execution the REST API shows with
its charge captured (MCP pays as REST does), and an unknown agent refused in words. With
`--orchestrator`, it also calls an agent that calls two others (API.md §5.1) and checks the
tree REST shows: two children, each captured with the orchestrator's share. Exits non-zero on
the first thing that is not as it should be.

    python mcp_example.py --url http://127.0.0.1:8080 --key fos_... --agent word-count \
        --orchestrator text-report
"""

import argparse
import asyncio
import json
import sys
import urllib.request

from mcp import ClientSession
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client


def check(condition, what):
    if not condition:
        sys.exit(f"mcp: {what}")
    print(f"ok: {what}")


def rest(url, key, path):
    request = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)


async def main(url, key, agent, orchestrator):
    client = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    async with client, streamable_http_client(f"{url}/mcp", http_client=client) as (read, write, *_):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            found = {tool.name: tool for tool in tools.tools}
            check(agent in found, f"tools/list offers {agent} (of {len(found)} tools)")
            schema = found[agent].input_schema
            check(schema.get("type") == "object", f"its input schema is the version's inputs ({schema})")

            result = await session.call_tool(agent, {"text": "the quick brown fox jumps over the lazy dog"})
            check(not result.is_error, f"tools/call runs it ({result.content})")
            structured = result.structured_content
            check(structured["output"]["words"] == 9, f"the output is structured content ({structured})")
            execution = rest(url, key, f"/v1/executions/{structured['execution_id']}")
            check(execution["status"] == "succeeded", "the REST API shows the same execution, succeeded")
            check(execution["output"] == structured["output"], "with the same output")
            charge = execution.get("charge") or {}
            check(charge.get("status") == "captured", f"and its charge captured ({charge})")

            refused = await session.call_tool("no-such-agent", {})
            text = " ".join(getattr(c, "text", "") for c in refused.content)
            check(refused.is_error and "not_found" in text, f"an unknown agent is refused in words ({text})")

            if orchestrator:
                result = await session.call_tool(orchestrator, {"text": "What a wonderful, delightful day."})
                check(not result.is_error, f"tools/call runs the orchestrator ({result.content})")
                structured = result.structured_content
                check(structured["output"]["mood"] == "positive", f"it combined its calls ({structured})")
                execution = rest(url, key, f"/v1/executions/{structured['execution_id']}")
                children = execution.get("children", [])
                check(len(children) == 2, f"REST lists its two calls ({children})")
                for child in children:
                    charge = child.get("charge") or {}
                    check(
                        child["status"] == "succeeded" and charge.get("status") == "captured",
                        f"{child['agent']} succeeded and was paid ({charge})",
                    )
                    check(charge["splits"]["orchestrator"] * 10 == charge["amount_minor"], "with the orchestrator's 10 %")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--agent", required=True)
    parser.add_argument("--orchestrator", help="an agent that calls two others")
    args = parser.parse_args()
    asyncio.run(main(args.url, args.key, args.agent, args.orchestrator))
