// Live parts of the console pages: the queue refreshes itself and an open conversation shows
// new customer messages as they arrive. Text is always inserted with textContent (no HTML).
"use strict";

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

async function getJson(url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(String(response.status));
  return response.json();
}

const WHO = { customer: "客户", bot: "机器人", system: "系统" };

function renderTranscript(list, rows) {
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 20;
  list.replaceChildren(...rows.map((m) => {
    const item = el("li", "msg from-" + m.from);
    item.append(el("span", "who", m.from === "agent" ? "人工客服 · " + m.agent : WHO[m.from]));
    item.append(el("span", "text", m.text));
    if (m.intent) item.append(el("span", "intent", m.intent + " " + Number(m.confidence || 0).toFixed(2)));
    return item;
  }));
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function watchTranscript() {
  const list = document.getElementById("transcript");
  if (!list) return;
  list.scrollTop = list.scrollHeight;
  const status = document.getElementById("status");
  setInterval(async () => {
    try {
      const data = await getJson(list.dataset.source);
      renderTranscript(list, data.transcript);
      if (status && data.handoff.status !== status.dataset.status) window.location.reload();
    } catch (error) { /* keep the last transcript; the next poll retries */ }
  }, 3000);
  const text = document.getElementById("reply-text");
  if (text) text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) text.form.requestSubmit();
  });
}

const PRIORITY_STATUS = { waiting: "排队中", active: "接待中", closed: "已结束" };

function watchQueue() {
  const marker = document.getElementById("refreshed");
  const body = document.querySelector("#queue tbody");
  if (!marker || !body) return;
  setInterval(async () => {
    try {
      const rows = await getJson(marker.dataset.refresh);
      if (!rows.length) {
        const empty = el("tr"); const cell = el("td", "muted", "暂无排队的会话"); cell.colSpan = 9;
        empty.append(cell); body.replaceChildren(empty); return;
      }
      body.replaceChildren(...rows.map((h) => {
        const row = el("tr", "prio-" + h.priority + " status-" + h.status);
        row.dataset.handoff = h.id;
        const badge = el("span", "badge prio-" + h.priority, h.priority_name);
        const cells = [h.queue_position || "", badge, h.reason_name, PRIORITY_STATUS[h.status],
          h.status === "waiting" ? h.waiting_minutes + " 分钟" : "", h.agent || "", h.channel, h.conversation_id];
        cells.forEach((value, index) => {
          const cell = el("td", index === 7 ? "mono" : "");
          if (value instanceof Node) cell.append(value); else cell.textContent = String(value);
          row.append(cell);
        });
        const link = el("a", "", "查看"); link.href = "/console/handoffs/" + encodeURIComponent(h.id);
        const last = el("td"); last.append(link); row.append(last);
        return row;
      }));
    } catch (error) { /* signed out or offline: the page keeps its last state */ }
  }, 5000);
}

document.addEventListener("DOMContentLoaded", () => { watchTranscript(); watchQueue(); });
