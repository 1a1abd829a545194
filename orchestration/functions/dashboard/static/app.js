// The dashboard's views over the management API (api.js). Hash routes:
//   #/                     overview          #/instances?...   instance list (filters in the URL)
//   #/instance/{id}        one instance      #/start           start an orchestration
//   #/poison               poison messages
import { ApiError, SignInNeeded, call, signIn, signOut, token } from "./api.js";
import {
  append,
  bytes,
  clear,
  downloadButton,
  h,
  instanceLink,
  statusBadge,
  when,
} from "./dom.js";
import { formatDuration, preview, timeline } from "./history.js";

const STATUSES = [
  "Running",
  "Pending",
  "Suspended",
  "Completed",
  "Failed",
  "Terminated",
  "ContinuedAsNew",
  "Canceled",
];
const TERMINAL = new Set(["Completed", "Failed", "Terminated", "Canceled"]);
const REFRESH_MS = 5000;
const PAYLOAD_PREVIEW = 10_000; // characters of a payload shown before "download"
const CELL_PREVIEW = 160;

const main = document.getElementById("main");
const notice = document.getElementById("notice");
let refresher = null; // the current view's refresh function
let refreshTimer = null;
let registry = null; // { orchestrators, activities, entities }

// -- notices and confirmation -------------------------------------------------------------
function say(text, kind = "info") {
  clear(notice);
  if (!text) return;
  notice.className = `notice ${kind}`;
  append(notice, [text]);
}

function failure(error) {
  if (error instanceof SignInNeeded) {
    showSignIn(error.message);
    return;
  }
  say(error instanceof ApiError ? error.message : `Error: ${error.message || error}`, "error");
}

// Ask before an action; `run(form)` does it (an error keeps the dialog open and shows why).
function confirmAction({ title, body, okLabel = "OK", danger = false, run }) {
  const dialog = document.getElementById("confirm");
  const form = document.getElementById("confirm-form");
  const ok = document.getElementById("confirm-ok");
  const errorLine = document.getElementById("confirm-error");
  clear(document.getElementById("confirm-title")).append(title);
  clear(document.getElementById("confirm-body"));
  append(document.getElementById("confirm-body"), [body || []]);
  clear(errorLine);
  ok.textContent = okLabel;
  ok.className = danger ? "danger" : "primary";
  return new Promise((resolve) => {
    const onSubmit = async (event) => {
      if (event.submitter && event.submitter.value === "cancel") return; // closes the dialog
      event.preventDefault();
      ok.disabled = true;
      clear(errorLine);
      try {
        const result = await run(form);
        form.removeEventListener("submit", onSubmit);
        dialog.close("ok");
        resolve(result);
      } catch (error) {
        if (error instanceof SignInNeeded) {
          form.removeEventListener("submit", onSubmit);
          dialog.close("cancel");
          showSignIn(error.message);
          resolve(undefined);
          return;
        }
        append(errorLine, [error.message || String(error)]);
      } finally {
        ok.disabled = false;
      }
    };
    form.addEventListener("submit", onSubmit);
    dialog.addEventListener(
      "close",
      () => {
        form.removeEventListener("submit", onSubmit);
        resolve(undefined);
      },
      { once: true },
    );
    dialog.showModal();
    const first = dialog.querySelector("#confirm-body input, #confirm-body textarea");
    (first || ok).focus();
  });
}

function parseJsonField(text, what) {
  if (text.trim() === "") return null;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${what} is not valid JSON: ${error.message}`);
  }
}

// -- layout pieces ------------------------------------------------------------------------
function section(title, ...content) {
  const id = `h-${title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return h("section", { "aria-labelledby": id }, h("h2", { id }, title), ...content);
}

function table(caption, headers, rows, attrs = {}) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      attrs,
      caption ? h("caption", { class: "visually-hidden" }, caption) : null,
      h("thead", {}, h("tr", {}, headers.map((x) => (x instanceof Node ? x : h("th", { scope: "col" }, x))))),
      h("tbody", {}, rows),
    ),
  );
}

function payload(label, value, filename) {
  const shown = preview(value, PAYLOAD_PREVIEW);
  const body = h("pre", { class: "json", tabindex: "0", "aria-label": label }, shown.text || "null");
  const extra = shown.truncated
    ? h(
        "p",
        { class: "truncated" },
        `Showing the first ${bytes(PAYLOAD_PREVIEW)} of ${bytes(shown.size)}. `,
        downloadButton(`Download ${label.toLowerCase()}`, filename, JSON.stringify(value, null, 2)),
      )
    : null;
  return h("div", { class: "payload" }, h("h3", {}, label), body, extra);
}

function cellPreview(value) {
  if (value === undefined) return "";
  const text = typeof value === "string" ? value : JSON.stringify(value);
  if (text === undefined) return "";
  if (text.length <= CELL_PREVIEW) return h("code", {}, text);
  return h(
    "details",
    {},
    h("summary", {}, h("code", {}, `${text.slice(0, CELL_PREVIEW)}…`)),
    h("pre", { class: "json" }, text.slice(0, PAYLOAD_PREVIEW)),
  );
}

// -- sign-in ------------------------------------------------------------------------------
function setSignedIn(signedIn) {
  for (const id of ["nav", "goto", "session-tools"]) document.getElementById(id).hidden = !signedIn;
}

function showSignIn(message) {
  stopRefresh();
  signOut();
  setSignedIn(false);
  say("");
  const keyInput = h("input", {
    id: "key",
    name: "key",
    type: "password",
    autocomplete: "off",
    required: true,
    "aria-describedby": "key-help",
  });
  const errorLine = h("p", { class: "error", role: "alert" }, message || "");
  const form = h(
    "form",
    {
      class: "sign-in",
      onsubmit: async (event) => {
        event.preventDefault();
        clear(errorLine);
        try {
          await signIn(keyInput.value.trim());
          keyInput.value = "";
          await enter();
        } catch (error) {
          append(errorLine, [
            error instanceof ApiError && error.status === 401
              ? "That key was refused. Use a function key or the master key of this app."
              : error.message,
          ]);
        }
      },
    },
    h("h2", {}, "Sign in"),
    h(
      "p",
      { id: "key-help" },
      "The dashboard uses the management API, which needs a key: a function key or the " +
        "master key of this app (locally, .host-keys.json; on Azure, the portal's App keys). " +
        "The key is sent once to start a session and is not kept.",
    ),
    h("label", { for: "key" }, "Key"),
    keyInput,
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, "Sign in")),
    errorLine,
  );
  append(clear(main), [form]);
  keyInput.focus();
}

async function enter() {
  setSignedIn(true);
  await route();
}

// -- auto-refresh -------------------------------------------------------------------------
// One refresh at a time: the next is scheduled only when the last has answered, so a slow
// hub never piles up calls.
let refreshRound = 0;

function stopRefresh() {
  if (refreshTimer) clearTimeout(refreshTimer);
  refreshTimer = null;
  refresher = null;
  refreshRound += 1;
}

// `quick`: the first looks come sooner (0.5, 1, 2 s), for an instance just started or acted
// on, whose next state is usually a moment away.
function startRefresh(fn, quick = false) {
  stopRefresh();
  refresher = fn;
  const round = refreshRound;
  const delays = quick ? [500, 1000, 2000] : [];
  const next = () => delays.shift() ?? REFRESH_MS;
  const tick = async () => {
    const auto = document.getElementById("auto-refresh");
    const idle = document.hidden || document.getElementById("confirm").open;
    if (auto.checked && !idle && refresher) {
      try {
        await refresher();
      } catch (error) {
        failure(error);
      }
    }
    if (round === refreshRound) refreshTimer = setTimeout(tick, next());
  };
  refreshTimer = setTimeout(tick, next());
}

// -- overview -----------------------------------------------------------------------------
async function overview() {
  const region = h("div", { class: "overview" });
  append(clear(main), [h("h2", { class: "view-title" }, "Overview"), region]);
  const render = async () => {
    const { body } = await call("GET", ["durabletask", "hub"]);
    document.getElementById("hub-name").textContent = body.taskHub;
    const cards = STATUSES.map((status) =>
      h(
        "li",
        {},
        h(
          "a",
          {
            class: `card status-${status.toLowerCase()}`,
            href: `#/instances?status=${status}`,
            "data-status": status,
          },
          h("span", { class: "count" }, String(body.instances[status] ?? 0)),
          h("span", { class: "label" }, status),
        ),
      ),
    );
    const total = `${body.totalInstances}${body.countsComplete ? "" : "+"} instance(s) in task hub ${body.taskHub}`;
    const queues = body.queues.map((q) =>
      h(
        "tr",
        {},
        h("th", { scope: "row", class: "mono" }, q.name),
        h("td", { class: "num" }, q.messages === null ? "—" : String(q.messages)),
        h(
          "td",
          { class: "num" },
          q.poisonMessages
            ? h("a", { href: "#/poison", class: "warn" }, String(q.poisonMessages))
            : "0",
        ),
      ),
    );
    const failures = body.recentFailures.length
      ? table(
          "Recent failures",
          ["Instance", "Orchestrator", "Failed at", "Failure"],
          body.recentFailures.map((f) =>
            h(
              "tr",
              {},
              h("td", {}, instanceLink(f.instanceId)),
              h("td", {}, f.name),
              h("td", {}, when(f.lastUpdatedTime)),
              h("td", { class: "failure-cell" }, f.failure || ""),
            ),
          ),
        )
      : h("p", {}, "No instance failed in the last 24 hours.");
    append(clear(region), [
      section("Instances by status", h("p", { class: "muted" }, total), h("ul", { class: "cards" }, cards)),
      section(
        "Queues",
        table("Queues", ["Queue", "Messages", "Poison messages"], queues, { class: "queues" }),
      ),
      section("Recent failures", failures),
      h("p", { class: "muted small" }, `Updated ${when(body.generatedAt)}`),
    ]);
  };
  await render();
  startRefresh(render);
}

// -- instance list ------------------------------------------------------------------------
function hashQuery() {
  const hash = window.location.hash;
  const index = hash.indexOf("?");
  return new URLSearchParams(index >= 0 ? hash.slice(index + 1) : "");
}

async function loadRegistry() {
  if (!registry) registry = (await call("GET", ["durabletask", "registry"])).body;
  return registry;
}

const COLUMNS = [
  ["instanceId", "Instance id"],
  ["name", "Orchestrator"],
  ["runtimeStatus", "Status"],
  ["createdTime", "Created"],
  ["lastUpdatedTime", "Last updated"],
];

async function instances() {
  const params = hashQuery();
  const known = await loadRegistry();
  const filters = {
    statuses: params.getAll("status").filter((s) => STATUSES.includes(s)),
    name: params.get("name") || "",
    prefix: params.get("prefix") || "",
    from: params.get("from") || "",
    to: params.get("to") || "",
    top: Number(params.get("top")) || 50,
  };
  const state = { tokens: [null], page: 0, rows: [], next: null, sort: null, descending: false };

  const statusBoxes = STATUSES.map((status) =>
    h(
      "label",
      { class: "inline" },
      h("input", {
        type: "checkbox",
        name: "status",
        value: status,
        checked: filters.statuses.includes(status),
      }),
      ` ${status}`,
    ),
  );
  const nameList = h(
    "datalist",
    { id: "orchestrator-names" },
    known.orchestrators.map((n) => h("option", { value: n })),
  );
  const form = h(
    "form",
    {
      class: "filters",
      "aria-label": "Filter instances",
      onsubmit: (event) => {
        event.preventDefault();
        const data = new FormData(form);
        const query = new URLSearchParams();
        for (const status of data.getAll("status")) query.append("status", status);
        for (const key of ["name", "prefix", "from", "to", "top"]) {
          const value = String(data.get(key) || "").trim();
          if (value) query.set(key, value);
        }
        const target = `#/instances?${query}`;
        if (window.location.hash === target) route();
        else window.location.hash = target;
      },
    },
    h("fieldset", { class: "statuses" }, h("legend", {}, "Status"), statusBoxes),
    h(
      "div",
      { class: "fields" },
      h("label", {}, "Orchestrator", h("input", { name: "name", list: "orchestrator-names", value: filters.name })),
      nameList,
      h("label", {}, "Instance id prefix", h("input", { name: "prefix", value: filters.prefix })),
      h(
        "label",
        {},
        "Created from",
        h("input", { name: "from", type: "datetime-local", step: "1", value: filters.from }),
      ),
      h(
        "label",
        {},
        "Created to",
        h("input", { name: "to", type: "datetime-local", step: "1", value: filters.to }),
      ),
      h(
        "label",
        {},
        "Page size",
        h(
          "select",
          { name: "top" },
          [25, 50, 100, 200].map((n) => h("option", { value: n, selected: n === filters.top }, String(n))),
        ),
      ),
    ),
    h(
      "div",
      { class: "buttons" },
      h("button", { type: "submit", class: "primary" }, "Apply filters"),
      h("a", { href: "#/instances", class: "button quiet" }, "Clear"),
    ),
  );
  const tbody = h("tbody", {});
  const headRow = h("tr", {});
  const summary = h("p", { class: "muted", "aria-live": "polite" });
  const previous = h("button", { type: "button", disabled: true }, "Previous page");
  const next = h("button", { type: "button", disabled: true }, "Next page");
  const pager = h("nav", { class: "pager", "aria-label": "Pages" }, previous, h("span", { class: "page-no" }), next);

  const renderHead = () => {
    clear(headRow);
    for (const [key, label] of COLUMNS) {
      const sorted = state.sort === key;
      headRow.append(
        h(
          "th",
          { scope: "col", "aria-sort": sorted ? (state.descending ? "descending" : "ascending") : "none" },
          h(
            "button",
            {
              type: "button",
              class: "sort",
              "data-column": key,
              onclick: () => {
                state.descending = state.sort === key ? !state.descending : false;
                state.sort = key;
                renderHead();
                renderRows();
              },
            },
            label,
            h("span", { "aria-hidden": "true" }, sorted ? (state.descending ? " ▼" : " ▲") : ""),
          ),
        ),
      );
    }
  };
  const renderRows = () => {
    const rows = [...state.rows];
    if (state.sort) {
      const key = state.sort;
      rows.sort((a, b) => String(a[key] ?? "").localeCompare(String(b[key] ?? "")));
      if (state.descending) rows.reverse();
    }
    clear(tbody);
    if (!rows.length) {
      tbody.append(h("tr", {}, h("td", { colspan: COLUMNS.length }, "No instances match.")));
    }
    for (const row of rows) {
      tbody.append(
        h(
          "tr",
          { "data-instance": row.instanceId },
          h("td", {}, instanceLink(row.instanceId)),
          h("td", {}, row.name),
          h("td", {}, statusBadge(row.runtimeStatus)),
          h("td", {}, when(row.createdTime)),
          h("td", {}, when(row.lastUpdatedTime)),
        ),
      );
    }
    pager.querySelector(".page-no").textContent = `Page ${state.page + 1}`;
    previous.disabled = state.page === 0;
    next.disabled = !state.next;
    summary.textContent = `${rows.length} instance(s) on this page${state.next ? "; more on the next" : ""}.`;
  };
  const load = async () => {
    const query = {
      runtimeStatus: filters.statuses.length ? filters.statuses.join(",") : undefined,
      name: filters.name,
      instanceIdPrefix: filters.prefix,
      createdTimeFrom: filters.from ? new Date(filters.from).toISOString() : undefined,
      createdTimeTo: filters.to ? new Date(filters.to).toISOString() : undefined,
      top: filters.top,
      showInput: "false",
    };
    const pageToken = state.tokens[state.page];
    const headers = pageToken ? { "x-ms-continuation-token": pageToken } : {};
    const { body, headers: answerHeaders } = await call("GET", ["durabletask", "instances"], { query, headers });
    state.rows = body;
    state.next = answerHeaders.get("x-ms-continuation-token");
    renderRows();
  };
  previous.addEventListener("click", async () => {
    state.page = Math.max(0, state.page - 1);
    await load().catch(failure);
  });
  next.addEventListener("click", async () => {
    if (!state.next) return;
    state.tokens[state.page + 1] = state.next;
    state.tokens.length = state.page + 2;
    state.page += 1;
    await load().catch(failure);
  });
  renderHead();
  append(clear(main), [
    h("h2", { class: "view-title" }, "Instances"),
    form,
    summary,
    h(
      "div",
      { class: "table-wrap" },
      h("table", { class: "instances" }, h("caption", { class: "visually-hidden" }, "Instances"), h("thead", {}, headRow), tbody),
    ),
    pager,
  ]);
  await load();
  startRefresh(load);
}

// -- one instance -------------------------------------------------------------------------
const ACTIONS = [
  { op: "raiseEvent", label: "Raise event", when: (s) => !TERMINAL.has(s) },
  { op: "suspend", label: "Suspend", when: (s) => s === "Running" || s === "Pending" },
  { op: "resume", label: "Resume", when: (s) => s === "Suspended" },
  { op: "terminate", label: "Terminate", when: (s) => !TERMINAL.has(s), danger: true },
  { op: "rewind", label: "Rewind", when: (s) => s === "Failed" },
  { op: "restart", label: "Restart", when: () => true },
  { op: "purge", label: "Purge", when: (s) => TERMINAL.has(s), danger: true },
];

function actionDialog(id, action, after) {
  const reason = h("input", { name: "reason", id: "action-reason", maxlength: "1000" });
  const reasonField = [h("label", { for: "action-reason" }, "Reason (optional)"), reason];
  const item = ["durabletask", "instances", id];
  let body;
  let run;
  switch (action.op) {
    case "raiseEvent": {
      const name = h("input", { name: "eventName", id: "event-name", required: true, maxlength: "100" });
      const data = h("textarea", { name: "eventData", id: "event-data", rows: "6", spellcheck: "false" }, "");
      body = [
        h("p", {}, `Send an external event to ${id}.`),
        h("label", { for: "event-name" }, "Event name"),
        name,
        h("label", { for: "event-data" }, "Event data (JSON; empty for null)"),
        data,
      ];
      run = async () => {
        if (!name.value.trim()) throw new Error("An event needs a name.");
        const value = parseJsonField(data.value, "The event data");
        await call("POST", [...item, "raiseEvent", name.value.trim()], { body: JSON.stringify(value) });
        return `Event ${name.value.trim()} raised.`;
      };
      break;
    }
    case "restart": {
      const fresh = h("input", { type: "checkbox", name: "newId", id: "restart-new-id", checked: true });
      body = [
        h("p", {}, `Start ${id}'s orchestrator again with its original input.`),
        h("label", { class: "inline", for: "restart-new-id" }, fresh, " With a new instance id"),
      ];
      run = async () => {
        const { body: started } = await call("POST", [...item, "restart"], {
          query: { restartWithNewInstanceId: fresh.checked ? "true" : "false" },
        });
        return { message: "Restarted.", goTo: started && started.id };
      };
      break;
    }
    case "purge":
      body = [h("p", {}, `Delete ${id}'s state and history for good. This cannot be undone.`)];
      run = async () => {
        await call("DELETE", item);
        return { message: `Purged ${id}.`, goTo: null, gone: true };
      };
      break;
    default:
      body = [h("p", {}, `${action.label} ${id}?`), ...reasonField];
      run = async () => {
        await call("POST", [...item, action.op], { query: { reason: reason.value.trim() } });
        return `${action.label} requested.`;
      };
  }
  return confirmAction({
    title: `${action.label}: ${id}`,
    body,
    okLabel: action.label,
    danger: !!action.danger,
    run,
  }).then((result) => {
    if (result === undefined) return;
    const message = typeof result === "string" ? result : result.message;
    say(message, "ok");
    if (typeof result === "object" && result.gone) {
      window.location.hash = "#/instances";
    } else if (typeof result === "object" && result.goTo && result.goTo !== id) {
      window.location.hash = `#/instance/${encodeURIComponent(result.goTo)}`;
    } else {
      after();
    }
  });
}

function nonDeterminism(parts) {
  return h(
    "div",
    { class: "nondeterminism" },
    h("h3", {}, parts.step === null ? "Where replay diverged" : `Where replay diverged: step ${parts.step}`),
    table(
      "History's action beside the code's",
      ["History recorded", "The code now does"],
      [h("tr", {}, h("td", {}, h("code", {}, parts.history)), h("td", {}, h("code", {}, parts.code)))],
      { class: "side-by-side" },
    ),
    h(
      "p",
      { class: "muted" },
      `Episode ${parts.episode}. The orchestrator's code changed while this instance ran; ` +
        "deploy the old code beside the new (versioning) or restart the instance.",
    ),
  );
}

function timelineView(status, events) {
  const model = timeline(events, Date.now());
  const range = Math.max(model.to - model.from, 1);
  const bar = (span, label, extra = {}) => {
    const left = ((span.start - model.from) / range) * 100;
    const width = Math.max(((span.end - span.start) / range) * 100, 0.4);
    return h(
      "div",
      { class: "track" },
      h("div", {
        class: `bar kind-${span.kind} outcome-${String(span.outcome).toLowerCase()}${span.open ? " open" : ""}`,
        style: { left: `${left}%`, width: `${Math.min(width, 100 - left)}%` },
        title: label,
        ...extra,
      }),
    );
  };
  const rows = [];
  if (model.execution) {
    const e = model.execution;
    rows.push(
      h(
        "li",
        { class: "row execution" },
        h("span", { class: "what" }, h("strong", {}, e.name), " orchestration"),
        bar(e, `${e.name}: ${formatDuration(e.duration)}`),
        h("span", { class: "how" }, `${e.outcome}${e.open ? " (so far)" : ""} · ${formatDuration(e.duration)}`),
      ),
    );
  }
  for (const span of model.spans) {
    const kindLabel = {
      activity: "activity",
      timer: "",
      "sub-orchestration": "sub-orchestration",
      event: "event received",
      "event-sent": "event sent",
    }[span.kind];
    const name =
      span.kind === "sub-orchestration"
        ? [instanceLink(span.instanceId, span.name)]
        : [h("strong", {}, span.kind === "timer" ? "Timer" : span.name)];
    const attempt = span.kind === "activity" && span.attempt > 1 ? ` · attempt ${span.attempt}${span.retry ? " (retry)" : ""}` : "";
    const due = span.kind === "timer" && Number.isFinite(span.due) ? ` · due ${when(new Date(span.due).toISOString())}` : "";
    const point = span.kind === "event" || span.kind === "event-sent";
    rows.push(
      h(
        "li",
        { class: `row kind-${span.kind}`, "data-kind": span.kind, "data-outcome": span.outcome },
        h("span", { class: "what" }, ...name, `${kindLabel ? ` ${kindLabel}` : ""}${span.id !== undefined ? ` #${span.id}` : ""}`),
        bar(span, `${span.name}: ${formatDuration(span.duration)}`),
        h(
          "span",
          { class: "how" },
          point
            ? `${span.outcome} at ${when(new Date(span.start).toISOString())}`
            : `${span.outcome}${span.open ? " (so far)" : ""} · ${formatDuration(span.duration)}${attempt}${due}`,
        ),
      ),
    );
  }
  if (!rows.length) return h("p", {}, "No history yet.");
  return h(
    "div",
    { class: "timeline" },
    h(
      "p",
      { class: "muted small" },
      `From ${when(new Date(model.from).toISOString())} to ${when(new Date(model.to).toISOString())} (${formatDuration(model.to - model.from)}).`,
    ),
    h("ol", { class: "gantt", "aria-label": "Timeline" }, rows),
  );
}

function historyTable(events) {
  const start = events.length ? Date.parse(events[0].Timestamp) : 0;
  const skip = new Set(["EventType", "EventId", "Timestamp", "IsPlayed", "Input", "Result", "Failure"]);
  return table(
    "History",
    ["#", "Event", "Id", "Time", "+", "Details", "Payload"],
    events.map((event, index) => {
      const details = Object.entries(event)
        .filter(([key]) => !skip.has(key))
        .map(([key, value]) =>
          key === "InstanceId"
            ? h("span", { class: "kv" }, `${key}: `, instanceLink(value))
            : h("span", { class: "kv" }, `${key}: ${typeof value === "object" ? JSON.stringify(value) : value}`),
        );
      const payloadValue = event.Failure ?? event.Result ?? event.Input;
      return h(
        "tr",
        { "data-event": event.EventType },
        h("td", { class: "num" }, String(index)),
        h("td", {}, event.EventType),
        h("td", { class: "num" }, event.EventId === undefined || event.EventId < 0 ? "" : String(event.EventId)),
        h("td", {}, when(event.Timestamp)),
        h("td", { class: "num" }, formatDuration(Date.parse(event.Timestamp) - start)),
        h("td", { class: "details" }, details),
        h("td", { class: "payload-cell" }, cellPreview(payloadValue)),
      );
    }),
    { class: "history" },
  );
}

async function instance(id) {
  let tab = "timeline";
  let shown = null; // lastUpdatedTime and status of what is on screen
  const region = h("div", { class: "instance" });
  append(clear(main), [region]);
  const changed = async () => {
    // A light read first: the whole history is fetched again only when the instance moved.
    const { body } = await call("GET", ["durabletask", "instances", id], { query: { showInput: "false" } });
    const moved = shown !== `${body.lastUpdatedTime}|${body.runtimeStatus}`;
    if (!moved && TERMINAL.has(body.runtimeStatus)) stopRefresh();
    return moved;
  };
  const render = async () => {
    let status;
    try {
      ({ body: status } = await call("GET", ["durabletask", "instances", id], {
        query: { showHistory: "true", showHistoryOutput: "true", showInput: "true" },
      }));
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        append(clear(region), [
          h("h2", { class: "view-title" }, "Instance not found"),
          h("p", {}, `No instance with id `, h("code", {}, id), " exists (it may have been purged)."),
          h("p", {}, h("a", { href: "#/instances" }, "Back to the instance list")),
        ]);
        stopRefresh();
        return;
      }
      throw error;
    }
    shown = `${status.lastUpdatedTime}|${status.runtimeStatus}`;
    const events = status.historyEvents || [];
    const started = events.find((e) => e.EventType === "ExecutionStarted");
    const parent = started && (started.Parent || started.ParentInstance);
    const actions = ACTIONS.filter((a) => a.when(status.runtimeStatus)).map((action) =>
      h(
        "button",
        {
          type: "button",
          class: action.danger ? "danger" : "",
          "data-action": action.op,
          onclick: () => actionDialog(id, action, settle).catch(failure),
        },
        action.label,
      ),
    );
    const facts = h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Orchestrator"),
      h("dd", {}, status.name),
      h("dt", {}, "Status"),
      h("dd", { id: "instance-status" }, statusBadge(status.runtimeStatus)),
      h("dt", {}, "Created"),
      h("dd", {}, when(status.createdTime)),
      h("dt", {}, "Last updated"),
      h("dd", {}, when(status.lastUpdatedTime)),
      started && started.Version ? [h("dt", {}, "Version"), h("dd", {}, started.Version)] : null,
      parent
        ? [
            h("dt", {}, "Parent"),
            h("dd", {}, instanceLink(parent.instanceId), ` (${parent.name}, task #${parent.taskScheduledId})`),
          ]
        : null,
    );
    const failureDetails = status.failureDetails;
    const failurePanel =
      status.runtimeStatus === "Failed"
        ? section(
            "Failure",
            h("p", { class: "failure" }, failureDetails ? `${failureDetails.errorType}: ${failureDetails.message}` : String(status.output)),
            failureDetails && failureDetails.nonDeterminism ? nonDeterminism(failureDetails.nonDeterminism) : null,
            failureDetails && failureDetails.stackTrace
              ? h("details", { open: true }, h("summary", {}, "Stack trace"), h("pre", { class: "stack", tabindex: "0" }, failureDetails.stackTrace))
              : null,
          )
        : null;
    const tabs = h("div", { role: "tablist", class: "tabs", "aria-label": "History views" });
    const panel = h("div", { role: "tabpanel", id: "history-panel", tabindex: "0" });
    const showTab = (name) => {
      tab = name;
      for (const button of tabs.querySelectorAll("button")) {
        const selected = button.dataset.tab === name;
        button.setAttribute("aria-selected", String(selected));
        button.tabIndex = selected ? 0 : -1;
      }
      panel.setAttribute("aria-labelledby", `tab-${name}`);
      append(clear(panel), [name === "timeline" ? timelineView(status, events) : historyTable(events)]);
    };
    for (const [name, label] of [["timeline", "Timeline"], ["table", "History table"]]) {
      tabs.append(
        h(
          "button",
          {
            type: "button",
            role: "tab",
            id: `tab-${name}`,
            "aria-controls": "history-panel",
            "data-tab": name,
            onclick: () => showTab(name),
            onkeydown: (event) => {
              if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
                const other = name === "timeline" ? "table" : "timeline";
                showTab(other);
                tabs.querySelector(`[data-tab="${other}"]`).focus();
              }
            },
          },
          label,
        ),
      );
    }
    const safeId = id.replace(/[^A-Za-z0-9_.-]+/g, "_");
    append(clear(region), [
      h("h2", { class: "view-title" }, "Instance ", h("span", { class: "mono", id: "instance-id" }, id)),
      h("div", { class: "actions", role: "group", "aria-label": "Actions" }, actions),
      facts,
      failurePanel,
      section(
        "Data",
        h(
          "div",
          { class: "payloads" },
          payload("Input", status.input, `${safeId}-input.json`),
          status.runtimeStatus === "Failed" ? null : payload("Output", status.output, `${safeId}-output.json`),
          payload("Custom status", status.customStatus, `${safeId}-custom-status.json`),
        ),
      ),
      section(`History (${events.length} events)`, tabs, panel),
    ]);
    showTab(tab);
    // Finished instances do not change by themselves; an action (rewind, restart) re-renders.
    if (TERMINAL.has(status.runtimeStatus)) stopRefresh();
    else if (!refresher) startRefresh(poll, true);
  };
  const poll = async () => {
    if (await changed()) await render();
  };
  // After an action: show what is there now, then look again soon for its effect.
  const settle = () => {
    render()
      .then(() => startRefresh(poll, true))
      .catch(failure);
  };
  await render();
}

// -- start --------------------------------------------------------------------------------
async function start() {
  const known = await loadRegistry();
  const name = h(
    "select",
    { id: "start-name", name: "name", required: true },
    known.orchestrators.map((n) => h("option", { value: n }, n)),
  );
  const input = h("textarea", { id: "start-input", name: "input", rows: "10", spellcheck: "false" }, "null");
  const instanceId = h("input", { id: "start-id", name: "instanceId", maxlength: "100", autocomplete: "off" });
  const errorLine = h("p", { class: "error", role: "alert" });
  const form = h(
    "form",
    {
      class: "start",
      onsubmit: async (event) => {
        event.preventDefault();
        clear(errorLine);
        try {
          const value = parseJsonField(input.value, "The input");
          const segments = ["orchestrators", name.value];
          if (instanceId.value.trim()) segments.push(instanceId.value.trim());
          const { body } = await call("POST", segments, { body: JSON.stringify(value) });
          say(`Started ${body.id}.`, "ok");
          window.location.hash = `#/instance/${encodeURIComponent(body.id)}`;
        } catch (error) {
          if (error instanceof SignInNeeded) throw error;
          append(errorLine, [error.message]);
        }
      },
    },
    h("label", { for: "start-name" }, "Orchestrator"),
    name,
    h("label", { for: "start-input" }, "Input (JSON)"),
    input,
    h("label", { for: "start-id" }, "Instance id (optional; a new one is made when empty)"),
    instanceId,
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, "Start")),
    errorLine,
  );
  append(clear(main), [h("h2", { class: "view-title" }, "Start an orchestration"), form]);
  stopRefresh();
}

// -- poison messages ----------------------------------------------------------------------
async function poison() {
  const region = h("div", { class: "poison" });
  append(clear(main), [
    h("h2", { class: "view-title" }, "Poison messages"),
    h(
      "p",
      { class: "muted" },
      "Messages the engine could not process, with why. Requeue one to run it again, or " +
        "discard it. Queue storage shows the first 32 messages of each poison queue.",
    ),
    region,
  ]);
  const render = async () => {
    const { body } = await call("GET", ["durabletask", "poison"]);
    const blocks = body.queues.map((q) => {
      const rows = q.listed.map((m) => {
        const text = m.bodyTruncated
          ? h(
              "details",
              {
                ontoggle: async (event) => {
                  const box = event.currentTarget.querySelector("pre");
                  if (!event.currentTarget.open || box.dataset.whole) return;
                  const { body: whole } = await call("GET", ["durabletask", "poison", q.queue, m.id]).catch((e) => {
                    failure(e);
                    return { body: null };
                  });
                  if (whole) {
                    box.textContent = whole.body;
                    box.dataset.whole = "1";
                  }
                },
              },
              h("summary", {}, `${m.bodyChars} characters — show`),
              h("pre", { class: "json" }, m.body),
            )
          : h("pre", { class: "json small" }, m.body);
        const act = (verb, label, danger) =>
          h(
            "button",
            {
              type: "button",
              class: danger ? "danger" : "",
              "data-action": verb,
              onclick: () =>
                confirmAction({
                  title: `${label} message ${m.id}`,
                  body: [
                    h(
                      "p",
                      {},
                      verb === "requeue"
                        ? `Put it back on ${q.queue}, where the engine will process it again.`
                        : `Delete it from ${q.poisonQueue} for good.`,
                    ),
                  ],
                  okLabel: label,
                  danger,
                  run: async () => {
                    if (verb === "requeue") await call("POST", ["durabletask", "poison", q.queue, m.id, "requeue"]);
                    else await call("DELETE", ["durabletask", "poison", q.queue, m.id]);
                    return `${label}d message ${m.id}.`;
                  },
                })
                  .then((done) => {
                    if (done) say(done, "ok");
                    return render();
                  })
                  .catch(failure),
            },
            label,
          );
        return h(
          "tr",
          { "data-message": m.id },
          h("td", { class: "mono" }, m.id),
          h("td", {}, when(m.insertedTime)),
          h("td", { class: "num" }, String(m.dequeueCount)),
          h("td", {}, m.reason),
          h("td", { class: "payload-cell" }, text),
          h("td", {}, h("div", { class: "row-actions" }, act("requeue", "Requeue", false), act("discard", "Discard", true))),
        );
      });
      return section(
        `${q.poisonQueue} (${q.messages})`,
        rows.length
          ? table(q.poisonQueue, ["Message", "Moved", "Dequeues", "Reason", "Body", "Actions"], rows, { class: "poison-table" })
          : h("p", {}, "Empty."),
      );
    });
    append(clear(region), blocks);
  };
  await render();
  startRefresh(render);
}

// -- routing ------------------------------------------------------------------------------
function markSection(name) {
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.section === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function route() {
  if (!token()) {
    showSignIn();
    return;
  }
  stopRefresh();
  const hash = window.location.hash || "#/";
  const path = hash.slice(1).split("?")[0];
  try {
    if (path.startsWith("/instance/")) {
      markSection("instances");
      await instance(decodeURIComponent(path.slice("/instance/".length)));
    } else if (path === "/instances") {
      markSection("instances");
      await instances();
    } else if (path === "/start") {
      markSection("start");
      await start();
    } else if (path === "/poison") {
      markSection("poison");
      await poison();
    } else {
      markSection("overview");
      await overview();
    }
    const heading = main.querySelector("h2");
    if (heading && document.activeElement === document.body) heading.setAttribute("tabindex", "-1");
  } catch (error) {
    failure(error);
  }
}

function wire() {
  window.addEventListener("hashchange", () => {
    say("");
    route().then(() => {
      const heading = main.querySelector("h2");
      if (heading) {
        heading.setAttribute("tabindex", "-1");
        heading.focus({ preventScroll: false });
      }
    });
  });
  document.getElementById("goto").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("goto-id");
    const id = input.value.trim();
    if (!id) return;
    input.value = "";
    window.location.hash = `#/instance/${encodeURIComponent(id)}`;
  });
  document.getElementById("sign-out").addEventListener("click", () => {
    registry = null;
    showSignIn("Signed out.");
  });
}

async function boot() {
  wire();
  if (!token()) {
    // Management open to anyone (host.json says so): a session comes without a key.
    try {
      await signIn("");
    } catch {
      showSignIn();
      return;
    }
  }
  await enter();
}

boot();
