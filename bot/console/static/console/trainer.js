// The trainer inbox page: list items, pick an intent, mark entities by selecting text, save
// or discard. Talks only to /console/trainer/api/*; POSTs carry the session's CSRF token.
"use strict";

const REASONS = {
  fallback: "没听懂", low_confidence: "拿不准", cancelled: "随后取消",
  asked_for_human: "随后转人工", corrected: "随后纠正",
};
let intents = [];
let entities = [];

function csrf() { return document.body.dataset.csrf || ""; }

async function api(path, body) {
  const options = { credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body) {
    options.method = "POST";
    options.headers["Content-Type"] = "application/json";
    options.headers["X-CSRF-Token"] = csrf();
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.detail || response.statusText);
  return data;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function intentLabel(choice) { return `${choice.name}（${choice.intent}）`; }

function intentFromInput(value) {
  const match = intents.find((c) => intentLabel(c) === value || c.intent === value.trim());
  return match ? match.intent : null;
}

// Offsets of the current selection inside `textNode`'s element, or null.
function selectionSpan(textElement) {
  const selection = window.getSelection();
  if (!selection.rangeCount) return null;
  const range = selection.getRangeAt(0);
  const node = textElement.firstChild;
  if (!node || range.startContainer !== node || range.endContainer !== node) return null;
  if (range.startOffset === range.endOffset) return null;
  return { start: range.startOffset, end: range.endOffset };
}

function renderItem(item) {
  const box = el("div", "item");
  box.dataset.id = item.id;
  const text = el("div", "text", item.text);
  const meta = el("div", "meta");
  meta.append(`×${item.count}　预测：${item.predicted_intent || "—"}（${(item.confidence || 0).toFixed(2)}）　`);
  for (const reason of item.reasons) meta.append(el("span", "reason", REASONS[reason] || reason));
  const context = el("div", "context");
  const ctx = item.context || {};
  if (ctx.previous_bot) context.append(el("div", "", `上一句（机器人）：${ctx.previous_bot}`));
  if (ctx.next_user) context.append(el("div", "", `下一句（客户）：${ctx.next_user}`));

  const marked = [];
  const spans = el("div", "spans");
  const showSpans = () => {
    spans.replaceChildren(...marked.map((m, i) => {
      const tag = el("span", "", `${item.text.slice(m.start, m.end)} → ${m.entity} `);
      const remove = el("button", "link", "×");
      remove.type = "button";
      remove.addEventListener("click", () => { marked.splice(i, 1); showSpans(); });
      tag.append(remove);
      return tag;
    }));
  };

  const intentInput = el("input");
  intentInput.setAttribute("list", "intent-options");
  intentInput.placeholder = "搜索意图（中文或英文名）";
  intentInput.name = "intent";
  const entitySelect = el("select");
  entitySelect.name = "entity";
  for (const e of entities) {
    const option = el("option", "", `${e.name}（${e.entity}）`);
    option.value = e.entity;
    entitySelect.append(option);
  }
  const markButton = el("button", "", "标注选中文字");
  markButton.type = "button";
  markButton.className = "mark";
  const message = el("div", "result");
  markButton.addEventListener("click", () => {
    const span = selectionSpan(text);
    if (!span) { message.textContent = "请先在上面的原文里选中一段文字"; return; }
    if (marked.some((m) => m.start < span.end && span.start < m.end)) {
      message.textContent = "和已标注的实体重叠了"; return;
    }
    marked.push({ ...span, entity: entitySelect.value });
    marked.sort((a, b) => a.start - b.start);
    message.textContent = "";
    showSpans();
  });

  const send = async (patch) => {
    const intent = intentFromInput(intentInput.value);
    if (!intent) { message.className = "result error"; message.textContent = "请从列表里选择一个意图"; return; }
    try {
      const result = await api("/console/trainer/api/label", { item_id: item.id, intent, entities: marked, patch });
      message.className = "result done";
      if (patch) {
        message.replaceChildren(el("pre", "patch", result.patch || "（训练数据里已有这条）"));
      } else if (result.written === false) {
        message.className = "result error";  // recorded, but not yet in the data file
        message.textContent = result.message;
        box.classList.add("labelled");
      } else {
        message.textContent = `已写入 ${result.data_file}：${result.example}`;
        box.classList.add("labelled");
      }
    } catch (error) { message.className = "result error"; message.textContent = error.message; }
  };
  const save = el("button", "save", "保存标注");
  save.type = "button";
  save.addEventListener("click", () => send(false));
  const patch = el("button", "patch", "导出补丁");
  patch.type = "button";
  patch.addEventListener("click", () => send(true));
  const discards = [["noise", "丢弃：无意义"], ["personal_data", "丢弃：含个人信息"]].map(([reason, label]) => {
    const button = el("button", `discard-${reason}`, label);
    button.type = "button";
    button.addEventListener("click", async () => {
      try {
        await api("/console/trainer/api/discard", { item_id: item.id, reason });
        message.className = "result done"; message.textContent = "已丢弃";
        box.classList.add("discarded");
      } catch (error) { message.className = "result error"; message.textContent = error.message; }
    });
    return button;
  });
  const controls = el("div", "controls");
  controls.append(intentInput, " ", entitySelect, " ", markButton, " ", save, " ", patch, " ", ...discards);
  box.append(text, meta, context, spans, controls, message);
  return box;
}

async function load(refresh) {
  const status = document.getElementById("status");
  status.textContent = "加载中…";
  try {
    const data = await api(`/console/trainer/api/inbox${refresh ? "?refresh=1" : ""}`);
    intents = data.intents;
    entities = data.entities;
    const options = document.getElementById("intent-options");
    options.replaceChildren(...intents.map((c) => { const o = el("option"); o.value = intentLabel(c); return o; }));
    const list = document.getElementById("inbox");
    list.replaceChildren(...data.items.map(renderItem));
    if (!data.items.length) list.textContent = list.dataset.empty;
    status.textContent = `${data.items.length} 条待处理`;
  } catch (error) { status.textContent = error.message; }
}

function drawBars() {
  const bars = [...document.querySelectorAll(".bar[data-delta]")];
  const largest = Math.max(0.01, ...bars.map((b) => Math.abs(parseFloat(b.dataset.delta))));
  for (const bar of bars) bar.style.width = `${(Math.abs(parseFloat(bar.dataset.delta)) / largest) * 100}%`;
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("refresh").addEventListener("click", () => load(true));
  drawBars();
  load(false);
});
