"""The results as a short Markdown report: every figure beside both references, with ratios, and the targets."""

import math
from typing import Any

NAMES = ("messenger", "stock", "stock-pubsub", "raw")
REFERENCES = ("stock", "stock-pubsub", "raw")
HEADER = (
    "| figure | messenger | stock relay | stock relay (PubSub) | raw floor "
    "| messenger / stock | messenger / stock PubSub | messenger / raw |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|"
)


def _number(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def _ratio(a: Any, b: Any) -> str:
    if not a or not b or any(isinstance(v, float) and math.isnan(v) for v in (a, b)):
        return "-"
    return f"{a / b:.2f}x"


def _row(label: str, values: dict[str, Any], digits: int = 0, *, ratios: bool = True) -> str:
    cells = [_number(values.get(n), digits) for n in NAMES]
    m = values.get("messenger")
    if not ratios:
        return f"| {label} | {' | '.join(cells)} | | | |"
    return f"| {label} | {' | '.join(cells)} | {' | '.join(_ratio(m, values.get(r)) for r in REFERENCES)} |"


def _pick(results: dict[str, Any], getter: Any) -> dict[str, Any]:
    picked = {}
    for name in NAMES:
        if name in results:
            try:
                picked[name] = getter(results[name])
            except (KeyError, TypeError):
                picked[name] = None
    return picked


def _delivery_table(title: str, results: dict[str, Any]) -> list[str]:
    lines = [f"### {title}", "", HEADER]
    lines.append(_row("deliveries/s at p99 < 100 ms", _pick(results, lambda r: r["capacity_deliveries_per_s"])))
    unsaturated = [n for n in NAMES if n in results and results[n].get("first_failing_offered_per_s") is None]
    if unsaturated and not any(results[n].get("fixed_rates") for n in unsaturated):
        note = ", ".join(unsaturated)
        lines.insert(2, f"Not saturated at the top of the ladder ({note}): capacity is at least the figure shown.\n")
    lines.append(_row("offered/s at that point", _pick(results, lambda r: r["capacity_offered_per_s"])))
    lines.append(_row("most delivered/s seen", _pick(results, lambda r: r["max_delivered_per_s"])))
    for key, label in (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99")):
        lines.append(_row(f"{label} at 2,000/s offered (ms)", _pick(results, lambda r, k=key: r["at_2000"][k]), 1))
    lines.append(_row("server CPU at 2,000/s (%)", _pick(results, lambda r: 100 * r["at_2000"]["server_cpu"])))
    persisted = {
        n: results[n].get("persisted_per_s") for n in NAMES if n in results and results[n].get("persisted_per_s")
    }
    if persisted:
        lines.append(_row("messages persisted/s at that point", persisted, ratios=False))
    order = {n: results[n].get("out_of_order") for n in NAMES if n in results and results[n].get("versioned")}
    if order:
        lines.append(_row("events out of version order, all steps", order, ratios=False))
    lines.append(
        _row(
            "CPU of other jobs on the machine, mean (%)",
            _pick(results, lambda r: 100 * sum(s["foreign_cpu"] for s in r["steps"]) / len(r["steps"])),
            ratios=False,
        )
    )
    lines.append("")
    for name in order:
        steps = ", ".join(f"{s['offered_deliveries']:,.0f}: {s.get('out_of_order', 0)}" for s in results[name]["steps"])
        lines.append(f"Events out of version order per step ({name}, offered deliveries/s: count): {steps}.")
        lines.append("")
    return lines


def _floor_lines(floor: dict[str, Any], multichat: dict[str, Any]) -> list[str]:
    """The database's floor for persisted messages (bench/db_floor.py) beside the messenger's."""
    each, batched = floor["commit_each"]["messages_per_s"], floor["batched"]["messages_per_s"]
    lines = [
        f"### Persisted messages/s against the database's floor ({floor.get('database', '?')})",
        "",
        "| figure | messages/s | messenger's share |",
        "|---|---:|---:|",
    ]
    persisted = (multichat.get("messenger") or {}).get("persisted_per_s")

    def share(floor_rate: float) -> str:
        return f"{100 * persisted / floor_rate:.0f} %" if persisted and floor_rate else "-"

    lines.append(f"| floor: a send's SQL, a commit each, one connection | {each:,.0f} | {share(each)} |")
    lines.append(
        f"| floor: a send's SQL, {floor['batched']['batch']} a commit, one connection | {batched:,.0f} | "
        f"{share(batched)} |"
    )
    lines.append(f"| messenger, multi-chat, highest passing step | {_number(persisted)} | |")
    return [*lines, ""]


def _idle_table(results: dict[str, Any]) -> list[str]:
    lines = ["### Idle sockets", "", HEADER]
    lines.append(_row("KiB resident per socket", _pick(results, lambda r: r["kib_per_socket"]), 1))
    lines.append(_row("sockets open", _pick(results, lambda r: r["still_open"]), ratios=False))
    lines.append(_row("seconds to connect all", _pick(results, lambda r: r["connect_seconds"]), 2))
    lines.append(_row("connects/s", _pick(results, lambda r: r["connects_per_s"])))
    lines.append(_row("errors", _pick(results, lambda r: r["errors"]), ratios=False))
    return [*lines, ""]


def _rest_table(results: dict[str, Any]) -> list[str]:
    lines = [
        f"### REST (history chat of {results.get('history_size', 0):,} messages; "
        f"user in {results.get('chat_count')} chats)",
        "",
        "| request | p50 ms | p99 ms | queries | bytes | other jobs' CPU |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, figures in results.items():
        if isinstance(figures, dict):
            lines.append(
                f"| `{figures['path']}` ({name}) | {figures['p50_ms']:.2f} | {figures['p99_ms']:.2f} | "
                f"{figures['queries']} | {figures['bytes']:,} | {100 * figures.get('foreign_cpu', 0):.0f} % |"
            )
    return [*lines, ""]


BIG_GROUP_ROWS = (
    ("rename", "rename"),
    ("rename_100", "rename"),
    ("add", "add a member"),
    ("remove", "remove that member"),
)
# The limit of a chat.updated frame's growth: at 10x the members, at most this many times the bytes.
BIG_GROUP_FRAME_GROWTH = 1.5


def _biggroup_table(big: dict[str, Any]) -> list[str]:
    lines = [
        f"### Big group: {big.get('members', 0):,} members, a socket each (messenger only)",
        "",
        "| operation | members | ops | REST p50 ms | REST p99 ms | server CPU ms/op | bytes a frame (one receiver) "
        "| all receivers' bytes/op | answer → last receipt p99 ms | request → last receipt p99 ms | incomplete "
        "| other jobs' CPU |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for key, label in BIG_GROUP_ROWS:
        phase = big.get(key)
        if not phase:
            continue
        sizes = " + ".join(f"{kind} {size:,.0f}" for kind, size in phase["frame_bytes"].items()) or "-"
        lines.append(
            f"| {label} | {phase['members']:,} | {phase['operations']} | {_number(phase['answer_p50_ms'], 1)} "
            f"| {_number(phase['answer_p99_ms'], 1)} | {_number(phase['cpu_ms_per_op'], 1)} | {sizes} "
            f"| {_number(phase['total_bytes_per_op'])} | {_number(phase['receipt_p99_ms'], 1)} "
            f"| {_number(phase.get('request_to_receipt_p99_ms'), 1)} | {phase['incomplete']} "
            f"| {100 * phase['foreign_cpu']:.0f} % |"
        )
    lines += [
        "",
        "Server CPU: the daphne process's, from the first request of a kind to the last member's receipt of its "
        "last operation, ÷ operations (nothing subtracted). Bytes: WebSocket payloads, presence frames left out.",
        "",
    ]
    return lines


def _soak_table(soak: dict[str, Any]) -> list[str]:
    windows = soak.get("windows") or []
    if not windows:
        return []
    minutes = soak["minutes"]
    rest_ok = soak.get("rest", {}).get("ok", 0)
    return [
        f"### Soak ({minutes:g} min, messenger only)",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| messages lost | {soak['lost']} |",
        f"| message events out of version order | {soak.get('out_of_order', '-')} |",
        f"| worst window p99 (ms) | {max(w['p99_ms'] for w in windows):,.1f} |",
        f"| idle sockets open at the end | {windows[-1]['idle_open']:,} |",
        f"| RSS first / last window (MiB) | {windows[0]['rss_mib']:.1f} / {windows[-1]['rss_mib']:.1f} |",
        f"| RSS growth after warm-up (MiB) | {soak['rss_growth_mib_after_warmup']:.1f} |",
        f"| REST answered (of 100/s offered) | {rest_ok / (minutes * 60):.0f}/s; {soak.get('rest')} |",
        "",
    ]


def _crowd_table(crowd: dict[str, Any]) -> list[str]:
    windows = crowd.get("windows") or []
    redis_each = crowd.get("redis_bytes_per_socket")
    lines = [
        f"### Crowd: {crowd['sockets']:,} idle sockets, {crowd['senders']} senders (messenger only)",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| daphne processes (open-file limit a process) | {crowd['server_workers']} ({crowd['open_file_limit']:,}) |",
        f"| client processes / loopback sources | {crowd['client_processes']} / {', '.join(crowd['sources'])} |",
        f"| the client processes' nice (lowered priority) | {crowd.get('crowd_nice', 0)} |",
        f"| open after connecting / at the end | {crowd['open_after_connect']:,} / {crowd['still_open_at_end']:,} |",
        f"| connect time, connects/s | {crowd['connect_seconds']:.1f} s, {crowd['connects_per_s']:,.0f}/s |",
        f"| errors (failed handshakes + closed by the end) | {crowd['errors']} {crowd['error_kinds'] or ''} |",
        f"| server CPU a connect | {crowd['connect_server_cpu_ms_each']:.2f} ms |",
        f"| server RSS without / with the crowd (MiB) | {crowd['rss_before_mib']:,.0f} "
        f"/ {crowd['rss_after_mib']:,.0f} |",
        f"| resident memory a socket | {crowd['kib_per_socket']:.1f} KiB |",
        f"| Redis memory a socket | {redis_each / 1024:.2f} KiB |" if redis_each is not None else "| Redis | - |",
        f"| server CPU while the crowd idles (with the senders) | {crowd['idle_server_cores']:.2f} cores |",
        f"| the crowd's client processes' CPU meanwhile | {crowd.get('crowd_client_cores', 0):.2f} cores |",
        f"| messages/s ({crowd['senders']} senders, to 10 members each) | {crowd['messages_per_second']:g} |",
        f"| without the crowd: p50 / p99 / max (ms) | {crowd['without_crowd']['p50_ms']:.1f} / "
        f"{crowd['without_crowd']['p99_ms']:.1f} / {crowd['without_crowd']['max_ms']:.1f} |",
    ]
    for index, w in enumerate(windows, 1):
        lines.append(
            f"| with the crowd, window {index}: p50 / p99 / max (ms), lost | {w['p50_ms']:.1f} / {w['p99_ms']:.1f} / "
            f"{w['max_ms']:.1f}, {w['lost']} of {w['sent']} |"
        )
    return [*lines, ""]


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured value and whether it is met."""
    found: list[dict[str, Any]] = []

    def add(name: str, goal: str, measured: str, met: bool | None) -> None:
        found.append({"target": name, "goal": goal, "measured": measured, "met": met})

    fanout = results.get("fanout", {})
    messenger = fanout.get("messenger")
    # The reference is the stock relay on the core layer; the PubSub layer's is judged alike.
    references = [(n, fanout.get(n)) for n in ("stock", "stock-pubsub") if fanout.get(n)]
    for name, stock in references:
        suffix = "" if name == "stock" else " (PubSub layer)"
        if messenger and stock:
            m, s = messenger["capacity_deliveries_per_s"], stock["capacity_deliveries_per_s"]
            add(
                f"capacity{suffix}",
                f"≥ 5x stock relay{suffix} at p99 < 100 ms",
                f"{m:,.0f}/s vs {s:,.0f}/s = {m / s if s else 0:.2f}x",
                s > 0 and m >= 5 * s,
            )
    if messenger and messenger.get("at_2000"):
        p99 = messenger["at_2000"]["p99_ms"]
        add("latency at 2,000/s", "p99 < 50 ms", f"{p99:.1f} ms", p99 < 50)
        for name, stock in references:
            suffix = "" if name == "stock" else " (PubSub layer)"
            if stock.get("at_2000"):
                sp99 = stock["at_2000"]["p99_ms"]
                add(
                    f"light load (20 msg/s x 100){suffix}",
                    f"p99 ≤ stock relay's{suffix}",
                    f"{p99:.1f} vs {sp99:.1f} ms",
                    p99 <= sp99,
                )
    for key, label in (("fanout", "fan-out"), ("multichat", "multi-chat")):
        measured = results.get(key, {}).get("messenger")
        if measured and "out_of_order" in measured:
            steps = len(measured.get("steps", []))
            add(
                f"version order ({label})",
                "0 events out of version order in every step",
                f"{measured['out_of_order']} in {measured['out_of_order_steps']} of {steps} steps "
                f"({measured['versioned']:,} events checked)",
                measured["versioned"] > 0 and measured["out_of_order"] == 0,
            )
    floor = results.get("db_floor")
    persisted = (results.get("multichat", {}).get("messenger") or {}).get("persisted_per_s")
    if floor and persisted is not None:
        # Against the higher floor, the batched one: the messenger commits the sends that arrive together at once.
        batched, each = floor["batched"]["messages_per_s"], floor["commit_each"]["messages_per_s"]
        add(
            "persisted messages/s (multi-chat)",
            f"≥ 50 % of the database's floor ({floor['batched']['batch']} a commit)",
            f"{persisted:,.0f}/s = {100 * persisted / batched:.0f} % of {batched:,.0f}/s "
            f"({100 * persisted / each:.0f} % of {each:,.0f}/s a commit each)",
            persisted >= 0.5 * batched,
        )
    idle = results.get("idle", {}).get("messenger")
    if idle:
        add("idle memory", "≤ 32 KiB per socket", f"{idle['kib_per_socket']:.1f} KiB", idle["kib_per_socket"] <= 32)
        add(
            "connect rate",
            "≥ 1,000 connects/s, no error",
            f"{idle['connects_per_s']:,.0f}/s, {idle['errors']} errors",
            idle["connects_per_s"] >= 1000 and idle["errors"] == 0,
        )
    rest = results.get("rest")
    if rest and "chat_list_200" in rest:
        big, small = rest["chat_list_200"], rest["chat_list_10"]
        constant = big["queries"] == small["queries"] == rest["chat_list_200_limit100"]["queries"]
        add(
            "chat list queries",
            "constant (10 vs 200 chats, 30 vs 100 a page)",
            f"{small['queries']} / {big['queries']} / {rest['chat_list_200_limit100']['queries']}",
            constant,
        )
        add("chat list latency", "p99 < 15 ms", f"{big['p99_ms']:.2f} ms", big["p99_ms"] < 15)
        first, deep = rest["history_first"], rest["history_deep"]
        add(
            "history 100k deep",
            "≤ 1.5x first page (p50)",
            f"{deep['p50_ms']:.2f} vs {first['p50_ms']:.2f} ms = {deep['p50_ms'] / first['p50_ms']:.2f}x",
            deep["p50_ms"] <= 1.5 * first["p50_ms"],
        )
    big = results.get("biggroup")
    if big:
        for key, label in BIG_GROUP_ROWS:
            phase = big.get(key)
            if key == "rename_100" or not phase:
                continue
            cpu = phase["cpu_ms_per_op"]
            goal_ms = big.get("cpu_target_ms", 50)
            add(
                f"big group: {label}",
                f"≤ {goal_ms:.0f} ms server CPU an operation ({phase['members']:,} members)",
                f"{cpu:,.1f} ms",
                cpu <= goal_ms,
            )
        big_frame = (big.get("rename") or {}).get("frame_bytes", {}).get("chat.updated")
        small_frame = (big.get("rename_100") or {}).get("frame_bytes", {}).get("chat.updated")
        if big_frame and small_frame:
            growth = big_frame / small_frame
            members, small = big["rename"]["members"], big["rename_100"]["members"]
            add(
                "big group: chat.updated size",
                f"a member's frame independent of the member count (≤ {BIG_GROUP_FRAME_GROWTH}x at "
                f"{members // small}x the members), not the total growing with members²",
                f"{big_frame:,.0f} B a member-frame at {members:,} members vs {small_frame:,.0f} B at {small:,} "
                f"= {growth:.2f}x; {big['rename']['total_bytes_per_op'] / 1e6:,.2f} MB to all members a rename",
                growth <= BIG_GROUP_FRAME_GROWTH,
            )
    soak = results.get("soak")
    if soak and soak.get("windows"):
        settled = soak["windows"][len(soak["windows"]) // 4 :]
        growth = soak["rss_growth_mib_after_warmup"]
        flat = growth <= 0.02 * settled[0]["rss_mib"]
        add(
            "soak",
            "every message delivered, RSS flat after warm-up",
            f"{soak['lost']} lost, {growth:+.1f} MiB",
            soak["lost"] == 0 and flat,
        )
    crowd = results.get("crowd")
    if crowd and crowd.get("windows"):
        add(
            "crowd",
            f"{crowd['sockets']:,} idle sockets open, ≤ 32 KiB a socket, message p99 < 100 ms, nothing lost",
            f"{crowd['still_open_at_end']:,} open, {crowd['kib_per_socket']:.1f} KiB, worst window p99 "
            f"{crowd['worst_window_p99_ms']:.1f} ms, {crowd['lost']} lost, {crowd['errors']} errors",
            crowd["still_open_at_end"] == crowd["sockets"]
            and crowd["kib_per_socket"] <= 32
            and crowd["worst_window_p99_ms"] < 100
            and crowd["lost"] == 0,
        )
    return found


def markdown(results: dict[str, Any]) -> str:
    meta = results.get("meta", {})
    lines = [
        "## Bench results",
        "",
        f"{meta.get('started', '')} · {meta.get('cpus', '?')} CPUs · database {meta.get('database', '?')} · "
        f"channel layer {meta.get('channel_layer', '?')} · {meta.get('duration', '?')} s a step · "
        f"messenger endpoint `{meta.get('endpoint', '?')}` · commit {meta.get('commit', '?')}",
        "",
    ]
    if "fanout" in results:
        lines += _delivery_table("Fan-out: 100 members, one sender", results["fanout"])
    if "multichat" in results:
        lines += _delivery_table("Multi-chat: 100 chats of 10, a sender in each", results["multichat"])
    if "db_floor" in results:
        lines += _floor_lines(results["db_floor"], results.get("multichat", {}))
    if "idle" in results:
        lines += _idle_table(results["idle"])
    if "rest" in results:
        lines += _rest_table(results["rest"])
    if "biggroup" in results:
        lines += _biggroup_table(results["biggroup"])
    if "soak" in results:
        lines += _soak_table(results["soak"])
    if "crowd" in results:
        lines += _crowd_table(results["crowd"])
    found = results.get("targets") or []
    if found:
        lines += ["### Targets", "", "| target | goal | measured | met |", "|---|---|---|---|"]
        for t in found:
            met = {True: "yes", False: "**no**", None: "-"}[t["met"]]
            lines.append(f"| {t['target']} | {t['goal']} | {t['measured']} | {met} |")
        lines.append("")
    return "\n".join(lines)
