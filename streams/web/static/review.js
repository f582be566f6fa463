// Billwise review page: a thin client of GET /review and POST /review/{action_id}.
// The bearer token lives in sessionStorage (this tab only) and is sent only to this origin's API.
// Every piece of data is written with textContent, never as HTML.
"use strict";

(function () {
  const TOKEN_KEY = "billwise.token";
  const $ = (id) => document.getElementById(id);
  let items = [];
  let current = null;

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function say(text) {
    $("alert").textContent = "";
    $("status").textContent = text;
  }

  function warn(text) {
    $("status").textContent = "";
    $("alert").textContent = text;
  }

  async function api(method, path, body) {
    const headers = { Authorization: "Bearer " + token(), Accept: "application/json" };
    const init = { method, headers, credentials: "omit", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    let payload = null;
    try {
      payload = await response.json();
    } catch (e) {
      payload = null;
    }
    if (response.status === 401) {
      signOut("Your token was not accepted. Please sign in again.");
      throw new Error("unauthorized");
    }
    return { status: response.status, payload };
  }

  function errorText(result) {
    const error = result.payload && result.payload.error;
    return error ? error.message : "The server answered " + result.status + ".";
  }

  // -- signing in and out ----------------------------------------------------------------------
  function showSignedIn(viewer) {
    $("sign-in").hidden = true;
    $("workspace").hidden = false;
    $("sign-out").hidden = false;
    $("viewer").hidden = false;
    $("viewer").textContent = "Signed in as " + viewer.user_id + " (" + viewer.role.replace(/_/g, " ") + ")";
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    items = [];
    current = null;
    $("workspace").hidden = true;
    $("detail").hidden = true;
    $("sign-out").hidden = true;
    $("viewer").hidden = true;
    $("sign-in").hidden = false;
    $("token").value = "";
    if (message) warn(message);
    $("token").focus();
  }

  // -- the queue -------------------------------------------------------------------------------
  function queueQuery() {
    const params = new URLSearchParams();
    const form = new FormData($("filter-form"));
    for (const [name, value] of form.entries()) {
      if (String(value).trim() !== "") params.append(name, String(value).trim());
    }
    const text = params.toString();
    return "/review" + (text ? "?" + text : "");
  }

  async function loadQueue(focusHeading) {
    const result = await api("GET", queueQuery());
    if (result.status !== 200) {
      warn(errorText(result));
      return false;
    }
    showSignedIn(result.payload.viewer);
    items = result.payload.items;
    renderQueue();
    if (!result.payload.index.caught_up) say("The queue is still loading; refresh in a moment for the full list.");
    if (focusHeading) $("queue-heading").focus();
    return true;
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  const USD = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });

  // Amounts arrive as two-place decimal strings; Number() is exact enough for display, never for sums.
  function money(text) {
    return text === null || text === undefined ? "unknown" : USD.format(Number(text));
  }

  function label(text) {
    return String(text).replace(/_/g, " ");
  }

  function renderQueue() {
    const body = $("queue-body");
    body.replaceChildren();
    $("queue-count").textContent = "(" + items.length + ")";
    $("queue-empty").hidden = items.length > 0;
    for (const item of items) {
      const action = item.action;
      const row = document.createElement("tr");
      row.dataset.actionId = action.action_id;
      if (item.queue.expired) row.classList.add("expired");
      if (current && current.action.action_id === action.action_id) row.classList.add("selected");
      cell(row, action.priority.toFixed(2), "num");
      const kind = cell(row, label(action.kind));
      if (item.queue.restricted) {
        const tag = document.createElement("span");
        tag.className = "tag restricted";
        tag.textContent = "senior approval";
        kind.append(" ", tag);
      }
      cell(row, action.channel);
      cell(row, action.account_id);
      cell(row, money(item.queue.balance), "num");
      cell(row, item.queue.age_days.toFixed(1) + " d" + (item.queue.expired ? " (expired)" : ""), "num");
      const reasons = cell(row, "");
      for (const reason of action.review.reasons) {
        const tag = document.createElement("span");
        tag.className = "tag";
        tag.textContent = reason;
        reasons.appendChild(tag);
      }
      const open = document.createElement("button");
      open.type = "button";
      open.className = "secondary";
      open.textContent = "Open";
      open.setAttribute("aria-label", "Open " + label(action.kind) + " for account " + action.account_id);
      open.addEventListener("click", () => showDetail(item));
      row.appendChild(document.createElement("td")).appendChild(open);
      body.appendChild(row);
    }
  }

  // -- one action ------------------------------------------------------------------------------
  function fact(list, term, value) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    list.append(dt, dd);
  }

  function when(text) {
    return text ? new Date(text).toLocaleString() : "";
  }

  function showDetail(item) {
    current = item;
    const action = item.action;
    for (const row of $("queue-body").children) {
      row.classList.toggle("selected", row.dataset.actionId === action.action_id);
    }
    $("detail-heading").textContent = label(action.kind) + " for " + action.account_id;
    const facts = $("detail-facts");
    facts.replaceChildren();
    fact(facts, "Action", action.action_id);
    fact(facts, "Channel", action.channel);
    fact(facts, "Balance", money(item.queue.balance));
    fact(facts, "Created", when(action.created_at));
    fact(facts, "Not before", when(action.not_before));
    fact(facts, "Expires", when(action.expires_at));
    fact(facts, "Why held", action.review.reasons.join(", ") || "policy");
    fact(facts, "Who may approve", item.queue.approver_roles.map(label).join(", "));
    if (action.tags && action.tags.length) fact(facts, "Tags", action.tags.join(", "));

    const message = action.message;
    $("detail-subject").textContent = message && message.subject ? message.subject : "";
    $("detail-body").textContent = message ? message.body : "No patient message (staff task).";
    $("decision-message").value = message ? message.body : "";
    $("decision-message").disabled = !message;
    $("decision-note").value = "";

    const plans = $("detail-plans").querySelector("tbody");
    plans.replaceChildren();
    for (const option of action.plan_options) {
      const row = document.createElement("tr");
      cell(row, money(option.monthly_amount), "num");
      cell(row, String(option.term_months), "num");
      cell(row, option.first_due_date);
      cell(row, money(option.total), "num");
      plans.appendChild(row);
    }
    $("detail-plans-block").hidden = action.plan_options.length === 0;
    const settlement = action.settlement;
    $("detail-settlement-block").hidden = !settlement;
    $("detail-settlement").textContent = settlement
      ? money(settlement.amount) + " (floor " + money(settlement.floor) + "), valid until " + settlement.valid_until
      : "";

    const scores = action.scores || {};
    const propensity = scores.propensity_to_pay;
    $("detail-scores").textContent =
      "Propensity to pay: " + (propensity === null || propensity === undefined ? "not scored" : propensity.toFixed(2)) +
      (scores.model_version ? " (model " + scores.model_version + ")" : "") +
      "; policy " + action.explanation.policy_version;
    const rules = $("detail-rules");
    rules.replaceChildren();
    for (const rule of action.explanation.rules) {
      const li = document.createElement("li");
      const outcome = document.createElement("span");
      outcome.className = "outcome";
      outcome.textContent = rule.id + ": " + rule.outcome;
      li.appendChild(outcome);
      if (rule.detail) li.append(" (" + rule.detail + ")");
      rules.appendChild(li);
    }

    const canApprove = item.queue.can_approve && !item.queue.expired;
    $("approve").disabled = !canApprove;
    $("approve-edited").disabled = !canApprove || !message;
    $("reject").disabled = !item.queue.can_reject;
    $("decision-restriction").textContent = item.queue.expired
      ? "This action has expired: it can only be rejected."
      : item.queue.can_approve
        ? ""
        : "Only " + item.queue.approver_roles.map(label).join(" or ") + " may approve this action; you may reject it.";

    $("detail").hidden = false;
    $("detail-heading").focus();
  }

  async function decide(decision) {
    if (!current) return;
    const action = current.action;
    const draft = action.message ? action.message.body : "";
    const edited = $("decision-message").value;
    if (decision === "approve" && action.message && edited !== draft) {
      warn("You changed the message. Use Approve with edits to send your version, or undo the change.");
      $("decision-message").focus();
      return;
    }
    const body = { decision };
    if (decision === "edit") body.message = edited;
    const note = $("decision-note").value.trim();
    if (note) body.note = note;
    const buttons = document.querySelectorAll("#decision-form button");
    buttons.forEach((button) => (button.disabled = true));
    let result;
    try {
      result = await api("POST", "/review/" + encodeURIComponent(action.action_id), body);
    } catch (e) {
      if (e.message !== "unauthorized") warn("The decision could not be sent: " + e.message);
      return;
    }
    if (result.status === 202) {
      const verb = { approve: "Approved", edit: "Approved with edits", reject: "Rejected" }[decision];
      items = items.filter((item) => item.action.action_id !== action.action_id);
      current = null;
      $("detail").hidden = true;
      renderQueue();
      say(verb + " " + label(action.kind) + " for " + action.account_id + ". The engine re-checks every gate before release.");
      $("queue-heading").focus();
      return;
    }
    showDetail(current);
    warn(errorText(result));
    if (result.payload && result.payload.error && result.payload.error.violations) {
      const codes = result.payload.error.violations.map((v) => v.code + (v.detail ? " (" + v.detail + ")" : ""));
      warn(errorText(result) + ": " + codes.join(", "));
    }
  }

  // -- wiring ----------------------------------------------------------------------------------
  document.addEventListener("DOMContentLoaded", () => {
    $("sign-in-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const value = $("token").value.trim();
      if (!value) {
        warn("Paste your access token first.");
        $("token").focus();
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, value);
      $("token").value = "";
      try {
        if (await loadQueue(true)) say("Signed in.");
      } catch (e) {
        /* signOut already explained a refused token */
      }
    });
    $("sign-out").addEventListener("click", () => signOut("Signed out."));
    $("filter-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        if (await loadQueue(true)) say("Filters applied: " + items.length + " held actions.");
      } catch (e) {
        /* handled in api() */
      }
    });
    for (const id of ["approve", "approve-edited", "reject"]) {
      $(id).addEventListener("click", (event) => decide(event.currentTarget.dataset.decision));
    }
    if (token()) {
      loadQueue(false).catch(() => {});
    } else {
      $("token").focus();
    }
  });
})();
