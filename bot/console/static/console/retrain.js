// The trainer page's 「训练新模型」: start a run, show its progress, then 上线 / 回退.
// Talks only to /console/trainer/api/retrain*; POSTs carry the session's CSRF token.
"use strict";

(function () {
  const POLL_MS = 3000;
  let timer = null;

  function csrf() { return document.body.dataset.csrf || ""; }

  async function call(path, post) {
    const options = { credentials: "same-origin", headers: { Accept: "application/json" } };
    if (post) {
      options.method = "POST";
      options.headers["X-CSRF-Token"] = csrf();
    }
    const response = await fetch(path, options);
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.detail || response.statusText);
    return data;
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    row.append(td);
    return td;
  }

  function figure(run, key) {
    const f = run.figures;
    if (!f || !f.old || !f.new) return "—";
    return `${f.old[key].toFixed(3)} → ${f.new[key].toFixed(3)}`;
  }

  function when(iso) { return (iso || "").replace("T", " ").slice(0, 16); }

  function explanation(run) {
    if (run.status === "failed") return run.error || "训练失败";
    if (run.live_at) return `${run.live_by} ${when(run.live_at)} 上线`;
    if (run.verdict && run.verdict.reasons.length) return run.verdict.reasons.join("；");
    if (run.verdict && run.verdict.ok) return "不比在用模型差，可以上线";
    return run.stage || "";
  }

  // The intents whose F1 moved, largest change first (the comparison's rows).
  function intentChanges(rows) {
    const box = document.createElement("details");
    box.className = "intent-changes";
    const summary = document.createElement("summary");
    summary.textContent = `各意图 F1 变化（${rows.length}）`;
    const table = document.createElement("table");
    table.className = "grid";
    for (const r of rows) {
      const row = document.createElement("tr");
      cell(row, r.intent);
      cell(row, `${r.old_f1.toFixed(3)} → ${r.new_f1.toFixed(3)}`);
      cell(row, `${r.delta > 0 ? "+" : ""}${r.delta.toFixed(3)}`, r.delta > 0 ? "up" : "down");
      table.append(row);
    }
    box.append(summary, table);
    return box;
  }

  function say(text) { document.getElementById("retrain-message").textContent = text; }

  async function act(path, busyText, button) {
    button.disabled = true;
    say(busyText);
    try {
      render(await call(path, true));
      say("");
    } catch (error) {
      say(error.message);
      button.disabled = false;
      await refresh();
    }
  }

  function render(state) {
    const body = document.querySelector("#retrain-runs tbody");
    body.replaceChildren();
    for (const run of state.runs) {
      const row = document.createElement("tr");
      row.dataset.run = run.id;
      cell(row, `#${run.id}`);
      cell(row, run.status_label, `status-${run.status}`);
      cell(row, run.requested_by);
      cell(row, when(run.requested_at));
      cell(row, figure(run, "accuracy"));
      cell(row, figure(run, "macro_f1"));
      const why = cell(row, explanation(run), "reasons");
      const changed = ((run.figures || {}).per_intent || []).filter((r) => r.delta !== 0);
      if (changed.length) why.append(intentChanges(changed));
      const actions = cell(row, "");
      if (run.can_go_live) {
        const live = document.createElement("button");
        live.type = "button";
        live.className = "go-live";
        live.textContent = "上线";
        live.addEventListener("click", () =>
          act(`/console/trainer/api/retrain/${run.id}/live`, "正在上线，服务器加载新模型约需一分钟…", live));
        actions.append(live);
      }
      body.append(row);
    }
    const history = document.querySelector("#retrain-history tbody");
    history.replaceChildren();
    for (const change of state.history) {
      const row = document.createElement("tr");
      cell(row, (change.at || "").replace("T", " ").slice(0, 19));
      cell(row, `#${change.run_id}`);
      cell(row, change.action_label);
      cell(row, change.actor);
      const d = change.detail || {};
      cell(row, d.error || (d.verdict ? (d.verdict.reasons.join("；") || "通过") : ""));
      history.append(row);
    }
    const working = state.working;
    document.getElementById("retrain-working").hidden = !working;
    document.getElementById("retrain-start").disabled = Boolean(working);
    if (working) {
      document.getElementById("retrain-progress").value = working.progress;
      document.getElementById("retrain-stage").textContent =
        `#${working.id} ${working.stage}（${Math.round(working.progress * 100)}%）`;
    }
    const rollback = document.getElementById("retrain-rollback");
    rollback.hidden = !(state.live && state.live.can_roll_back);
    rollback.disabled = Boolean(working);
    clearTimeout(timer);
    if (working) timer = setTimeout(refresh, POLL_MS);
  }

  async function refresh() {
    try {
      render(await call("/console/trainer/api/retrain", false));
    } catch (error) {
      say(error.message);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const start = document.getElementById("retrain-start");
    if (!start) return;
    start.addEventListener("click", () => act("/console/trainer/api/retrain", "正在开始训练…", start));
    const rollback = document.getElementById("retrain-rollback");
    rollback.addEventListener("click", () => {
      if (window.confirm("回退到上一个模型？所有服务器都会换回原来的模型。")) {
        act("/console/trainer/api/retrain/rollback", "正在回退…", rollback);
      }
    });
    refresh();
  });
})();
