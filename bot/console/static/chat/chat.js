/* 供电业务受理助手 — customer web chat (plain ES2017, no dependencies).
 *
 * The conversation lives in Rasa's tracker; /chat/api/history is the source of truth and the
 * page only appends what it has not shown yet (#history). What the page has shown but the
 * tracker does not have yet — a message on its way, the replies that came back with it, a
 * failed message, notices — lives in #local, and is replaced by the tracker's version as soon
 * as a history poll brings it (matched by the message id sent as Rasa metadata).
 *
 * A photo (the file itself as the body of /chat/api/photos) and a location (the browser's
 * position, only with the customer's consent, to /chat/api/location) go through the same
 * queue as typed messages; their bubbles read 「[照片]」 / 「[位置]」, as the history shows them.
 *
 * Every piece of text goes into the page with textContent, never innerHTML.
 */
(function () {
  "use strict";

  var API = "/chat/api";
  var POLL_MS = 3000;
  var RETRY_DELAYS_MS = [1000, 2000, 4000]; // three retries after the first try
  var MAX_CHARS = 2000;
  var TIME_GAP_S = 5 * 60;
  var BUSY = "助手暂时忙不过来，请稍后再试，或拨打95598。";
  var OFFLINE = "网络连接中断，请检查网络后点「重发」。";
  var RETRYING = "网络不稳定，正在重试…";
  var WELCOME =
    "您好！我是供电业务受理助手，可以为您办理停电报修、电费查询、新装增容、过户销户等业务，也可以受理投诉和建议。\n" +
    "请直接描述您的问题，或点下面的常用业务：";
  var QUICK = ["停电报修", "查电费", "办理新装"];
  var PHOTO_MAX_BYTES = 10 * 1024 * 1024; // the console checks again (and for real)
  var PHOTO_SHOWN = "[照片]";
  var LOCATION_SHOWN = "[位置]";
  var PHOTO_INTENT = "/send_photo";
  var LOCATION_INTENT = "/share_location";
  var PHOTO_TOO_LARGE = "照片太大了（最大10MB），请换一张或压缩后再发。";
  var LOCATION_DENIED = "没有获得位置权限，您可以直接输入详细地址。";
  var LOCATION_UNAVAILABLE = "暂时没能获取到您的位置，您可以直接输入详细地址。";

  var log = document.getElementById("log");
  var historyBox = document.getElementById("history");
  var localBox = document.getElementById("local");
  var typing = document.getElementById("typing");
  var form = document.getElementById("composer");
  var input = document.getElementById("input");
  var sendButton = document.getElementById("send");
  var statusLine = document.getElementById("status");
  var photoButton = document.getElementById("photo-button");
  var photoFile = document.getElementById("photo-file");
  var locationButton = document.getElementById("location-button");
  var avatarSrc = typing.querySelector(".avatar").getAttribute("src");
  var agentAvatarSrc = avatarSrc.replace("avatar.svg", "agent.svg");

  var shown = []; // history entries rendered in #history, in order
  var lastHistoryTs = null; // timestamp of the last entry in #history (seconds)
  var lastLocalTs = null; // timestamp of the last row in #local (seconds)
  var welcomeTs = null;
  var welcomeDecided = false;
  var queue = []; // messages waiting to be delivered, in order
  var pumping = false;
  var outstanding = {}; // id → message shown in #local, not yet seen in the history
  var syncing = null;
  var syncAgain = null;
  var pollTimer = null;
  var online = true;
  var locating = false; // waiting for the browser's position

  // ---------------------------------------------------------------- identity
  // The conversation is this browser's: the console keeps its id in a signed, HttpOnly
  // cookie, so the id never appears in a URL and the page's script never sees it.

  function randomHex(bytes) {
    var values = new Uint8Array(bytes);
    window.crypto.getRandomValues(values); // works on plain http too (randomUUID does not)
    var out = "";
    for (var i = 0; i < values.length; i++) out += (values[i] + 0x100).toString(16).slice(1);
    return out;
  }

  // ---------------------------------------------------------------- rendering

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function pad(n) {
    return n < 10 ? "0" + n : String(n);
  }

  function timeLabel(ts) {
    var d = new Date(ts * 1000);
    var now = new Date();
    var hm = pad(d.getHours()) + ":" + pad(d.getMinutes());
    var day = new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
    var today = new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime();
    if (day === today) return hm;
    if (today - day === 86400000) return "昨天 " + hm;
    var md = d.getMonth() + 1 + "月" + d.getDate() + "日 " + hm;
    return d.getFullYear() === now.getFullYear() ? md : d.getFullYear() + "年" + md;
  }

  function timeRow(ts, previous) {
    if (typeof ts !== "number" || !isFinite(ts)) return null;
    if (previous !== null && ts - previous < TIME_GAP_S) return null;
    var row = el("div", "time");
    row.appendChild(el("span", null, timeLabel(ts)));
    return row;
  }

  function chipButton(title, payload, className) {
    var chip = el("button", className || "chip", title);
    chip.type = "button";
    chip.setAttribute("data-payload", payload);
    return chip;
  }

  /** One message row: {from: "bot"|"customer", text, buttons, agent}. */
  function messageRow(entry) {
    var bot = entry.from !== "customer";
    var row = el("div", "row " + (bot ? "bot" : "customer"));
    if (bot) {
      var avatar = el("img", "avatar");
      avatar.src = entry.agent ? agentAvatarSrc : avatarSrc;
      avatar.alt = "";
      row.appendChild(avatar);
    }
    var body = el("div", "body");
    if (bot && entry.agent) body.appendChild(el("div", "agent", "人工客服 · " + entry.agent));
    if (entry.text) body.appendChild(el("div", "bubble", entry.text));
    var buttons = Array.isArray(entry.buttons) ? entry.buttons : [];
    if (bot && buttons.length) {
      var chips = el("div", "chips");
      buttons.forEach(function (b) {
        if (b && b.title) chips.appendChild(chipButton(b.title, b.payload || b.title));
      });
      body.appendChild(chips);
    }
    row.appendChild(body);
    return row;
  }

  function systemRow(text, warn) {
    var row = el("div", warn ? "system warn" : "system");
    row.appendChild(el("span", null, text));
    return row;
  }

  function nearBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  }

  function scrollToBottom() {
    log.scrollTop = log.scrollHeight;
  }

  /** Bot buttons are for the current turn: those before the customer's latest message go grey. */
  function refreshChips() {
    var rows = log.querySelectorAll(".row");
    var lastCustomer = -1;
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].classList.contains("customer")) lastCustomer = i;
    }
    for (var j = 0; j < rows.length; j++) {
      if (rows[j].classList.contains("customer")) continue;
      var chips = rows[j].querySelectorAll(".chip");
      for (var k = 0; k < chips.length; k++) chips[k].disabled = j < lastCustomer;
    }
  }

  function latestTs() {
    var ts = [lastHistoryTs, lastLocalTs, welcomeTs].filter(function (t) {
      return t !== null;
    });
    return ts.length ? Math.max.apply(null, ts) : null;
  }

  /** Append rows to #local (what the tracker does not have yet). */
  function addLocal(nodes, owner) {
    var stick = nearBottom();
    var now = Date.now() / 1000;
    var separator = timeRow(now, latestTs());
    if (separator) {
      if (owner) separator.setAttribute("data-owner", owner);
      localBox.appendChild(separator);
    }
    lastLocalTs = now;
    nodes.forEach(function (node) {
      if (owner) node.setAttribute("data-owner", owner);
      localBox.appendChild(node);
    });
    refreshChips();
    if (stick || owner) scrollToBottom();
  }

  function removeLocal(owner) {
    var nodes = localBox.querySelectorAll('[data-owner="' + owner + '"]');
    for (var i = 0; i < nodes.length; i++) nodes[i].remove();
  }

  function showWelcome() {
    if (welcomeDecided) return;
    welcomeDecided = true;
    welcomeTs = Date.now() / 1000;
    var block = el("div", "welcome");
    var separator = timeRow(welcomeTs, null);
    if (separator) block.appendChild(separator);
    var row = messageRow({ from: "bot", text: WELCOME, buttons: [] });
    var chips = el("div", "chips");
    QUICK.forEach(function (title) {
      chips.appendChild(chipButton(title, title));
    });
    row.querySelector(".body").appendChild(chips);
    block.appendChild(row);
    log.insertBefore(block, historyBox);
    refreshChips();
  }

  function setOnline(value) {
    if (value === online) return;
    online = value;
    statusLine.textContent = value ? "在线 · 7×24小时受理" : "连接不稳定，正在重新连接…";
    statusLine.classList.toggle("offline", !value);
  }

  // ---------------------------------------------------------------- history (source of truth)

  function sameEntry(a, b) {
    return a && b && a.from === b.from && a.text === b.text && a.timestamp === b.timestamp;
  }

  function applyHistory(list) {
    var stick = nearBottom();
    if (list.length < shown.length || (shown.length && !sameEntry(list[shown.length - 1], shown[shown.length - 1]))) {
      // the conversation was restarted or rewritten: show it again from the start
      while (historyBox.firstChild) historyBox.removeChild(historyBox.firstChild);
      shown = [];
      lastHistoryTs = null;
    }
    var fresh = list.slice(shown.length);
    if (!fresh.length) return;
    var fragment = document.createDocumentFragment();
    fresh.forEach(function (entry) {
      var previous = lastHistoryTs !== null ? lastHistoryTs : welcomeTs;
      var separator = timeRow(entry.timestamp, previous);
      if (separator) fragment.appendChild(separator);
      if (typeof entry.timestamp === "number") lastHistoryTs = entry.timestamp;
      fragment.appendChild(messageRow(entry));
      // a message of ours that the tracker now has: its local copy (and replies) go away
      if (entry.from === "customer" && entry.id && outstanding[entry.id]) {
        var message = outstanding[entry.id];
        message.delivered = true;
        delete outstanding[entry.id];
        removeLocal(entry.id);
      }
    });
    historyBox.appendChild(fragment);
    shown = list;
    refreshChips();
    if (stick) scrollToBottom();
  }

  async function fetchHistory() {
    try {
      var response = await fetch(API + "/history", {
        cache: "no-store",
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) throw new Error("history " + response.status);
      var list = await response.json();
      if (!Array.isArray(list)) throw new Error("history: not a list");
      setOnline(true);
      return list;
    } catch (e) {
      setOnline(false);
      return null;
    }
  }

  async function doSync() {
    var list = await fetchHistory();
    if (list === null) return false;
    removeLocal("load-failed");
    if (!welcomeDecided) {
      if (list.length === 0) showWelcome();
      welcomeDecided = true;
    }
    applyHistory(list);
    return true;
  }

  /** Fetch the history now; calls made while one is running wait for a fresh one. */
  function sync() {
    if (syncing) {
      if (!syncAgain) {
        syncAgain = syncing.then(function () {
          syncAgain = null;
          return sync();
        });
      }
      return syncAgain;
    }
    syncing = doSync().finally(function () {
      syncing = null;
    });
    return syncing;
  }

  function schedulePoll() {
    clearTimeout(pollTimer);
    if (document.visibilityState !== "visible") return;
    pollTimer = setTimeout(function () {
      sync().then(schedulePoll, schedulePoll);
    }, POLL_MS);
  }

  // ---------------------------------------------------------------- sending

  function sleep(ms) {
    return new Promise(function (resolve) {
      setTimeout(resolve, ms);
    });
  }

  function setTyping(on) {
    var stick = nearBottom();
    typing.hidden = !on;
    if (on && stick) scrollToBottom();
  }

  /** Show a customer message and queue it. `payload` is what Rasa gets (a button's payload);
   * `media` is a photo ({kind: "photo", file}) or a location ({kind: "location", lat, lon}). */
  function send(text, payload, typed, media) {
    text = String(text);
    if (!text.trim()) return;
    var message = {
      id: "m" + randomHex(8),
      text: text,
      payload: payload === undefined ? text : String(payload),
      typed: !!typed,
      media: media || null,
      delivered: false,
    };
    message.row = messageRow({ from: "customer", text: text });
    message.row.classList.add("pending");
    message.meta = el("div", "meta");
    message.row.querySelector(".body").appendChild(message.meta);
    outstanding[message.id] = message;
    addLocal([message.row], message.id);
    // a spinner only when it takes a while
    message.spinnerTimer = setTimeout(function () {
      if (message.row.classList.contains("pending") && !message.meta.firstChild) {
        message.meta.appendChild(el("span", "spinner"));
      }
    }, 800);
    queue.push(message);
    refreshTools();
    pump();
  }

  async function pump() {
    if (pumping) return;
    pumping = true;
    try {
      while (queue.length) {
        await deliver(queue[0]);
        queue.shift();
        refreshTools();
      }
    } finally {
      pumping = false;
      setTyping(false);
    }
  }

  function postJson(path, body) {
    return fetch(API + path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
      cache: "no-store",
      credentials: "same-origin",
    });
  }

  /** The request that delivers a message: a typed text or button, a photo, a location. */
  function request(message) {
    var media = message.media;
    if (media && media.kind === "photo") {
      var type = /^image\//.test(media.file.type || "") ? media.file.type : "application/octet-stream";
      return fetch(API + "/photos?id=" + encodeURIComponent(message.id), {
        method: "POST",
        headers: { "Content-Type": type, Accept: "application/json" },
        body: media.file,
        cache: "no-store",
        credentials: "same-origin",
      });
    }
    if (media && media.kind === "location") {
      return postJson("/location", { lat: media.lat, lon: media.lon, id: message.id });
    }
    return postJson("/messages", { message: message.payload, id: message.id });
  }

  /** {ok, replies} | {ok: false, retry, error} */
  async function post(message) {
    var response;
    try {
      response = await request(message);
    } catch (e) {
      return { ok: false, retry: true, error: OFFLINE };
    }
    var body = null;
    try {
      body = await response.json();
    } catch (e) {
      body = null;
    }
    if (response.ok && Array.isArray(body)) return { ok: true, replies: body };
    var error = body && typeof body.error === "string" ? body.error : BUSY;
    if (response.status === 413 && message.media && message.media.kind === "photo" && error === BUSY) {
      error = PHOTO_TOO_LARGE; // refused by a proxy in front, before the console saw it
    }
    var retry = response.ok || response.status >= 500 || response.status === 408 || response.status === 429;
    return { ok: false, retry: retry, error: error };
  }

  function settle(message) {
    clearTimeout(message.spinnerTimer);
    message.row.classList.remove("pending");
    while (message.meta.firstChild) message.meta.removeChild(message.meta.firstChild);
  }

  async function deliver(message) {
    var result = null;
    var notice = null;
    for (var attempt = 0; attempt <= RETRY_DELAYS_MS.length; attempt++) {
      if (attempt > 0) {
        setTyping(false);
        if (!notice) {
          notice = systemRow(RETRYING, true);
          addLocal([notice], message.id);
        }
        await sleep(RETRY_DELAYS_MS[attempt - 1]);
        await sync(); // it may have arrived after all (a reply that timed out)
      }
      if (message.delivered) break;
      setTyping(true);
      result = await post(message);
      if (result.ok || !result.retry || message.delivered) break;
    }
    setTyping(false);
    if (notice) notice.remove();
    if (message.delivered) return; // the history has it, and its replies
    settle(message);
    if (result && result.ok) {
      var replies = result.replies.map(function (r) {
        return { from: "bot", text: r.text, buttons: r.buttons };
      });
      addLocal(replies.map(messageRow), message.id);
      sync(); // swap the local copies for the tracker's
      return;
    }
    failed(message, result ? result.error : BUSY, result ? result.retry : true);
  }

  function failed(message, error, canRetry) {
    message.row.classList.add("failed");
    message.meta.appendChild(el("span", "failed-mark", "!"));
    if (canRetry) {
      var again = chipButton("重发", message.payload, "chip retry");
      again.setAttribute("data-retry", message.id);
      message.meta.appendChild(again);
    } else {
      message.meta.appendChild(el("span", null, "未发送"));
      delete outstanding[message.id];
    }
    addLocal([systemRow(error, false)], message.id);
    // nothing is lost: what the customer typed goes back into the input
    if (message.typed && !input.value) {
      input.value = message.text;
      inputChanged();
    }
  }

  function resend(id) {
    var message = outstanding[id];
    if (!message) return;
    delete outstanding[id];
    removeLocal(id);
    if (message.typed && input.value === message.text) {
      input.value = "";
      inputChanged();
    }
    send(message.text, message.payload, message.typed, message.media);
  }

  // ---------------------------------------------------------------- photo and location

  /** One photo or location at a time: the buttons rest while one is on its way. */
  function refreshTools() {
    var busy =
      locating ||
      queue.some(function (m) {
        return m.media !== null;
      });
    photoButton.disabled = busy;
    locationButton.disabled = busy;
  }

  function notice(text) {
    addLocal([systemRow(text, true)], null);
  }

  photoButton.addEventListener("click", function () {
    if (photoButton.disabled) return;
    photoFile.value = ""; // the same photo again is a new choice
    photoFile.click();
  });

  photoFile.addEventListener("change", function () {
    var file = photoFile.files && photoFile.files[0];
    photoFile.value = "";
    if (!file) return;
    if (file.size > PHOTO_MAX_BYTES) {
      notice(PHOTO_TOO_LARGE);
      return;
    }
    send(PHOTO_SHOWN, PHOTO_INTENT, false, { kind: "photo", file: file });
  });

  locationButton.addEventListener("click", function () {
    if (locating || locationButton.disabled) return;
    if (!navigator.geolocation) {
      notice(LOCATION_UNAVAILABLE);
      return;
    }
    locating = true;
    refreshTools();
    // the browser asks the customer first; nothing is sent without their yes
    navigator.geolocation.getCurrentPosition(
      function (position) {
        locating = false;
        var where = { kind: "location", lat: position.coords.latitude, lon: position.coords.longitude };
        send(LOCATION_SHOWN, LOCATION_INTENT, false, where);
        refreshTools();
      },
      function (error) {
        locating = false;
        refreshTools();
        notice(error && error.code === 1 ? LOCATION_DENIED : LOCATION_UNAVAILABLE);
      },
      { enableHighAccuracy: true, timeout: 20000, maximumAge: 60000 }
    );
  });

  // ---------------------------------------------------------------- input

  function inputChanged() {
    sendButton.disabled = !input.value.trim();
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 120) + "px";
  }

  function submitTyped() {
    var text = input.value;
    if (!text.trim()) return;
    if (text.length > MAX_CHARS) {
      addLocal([systemRow("消息太长了（最多" + MAX_CHARS + "字），请分几次发送。", true)], null);
      return;
    }
    input.value = "";
    inputChanged();
    send(text, text, true);
    input.focus();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    submitTyped();
  });

  input.addEventListener("input", inputChanged);

  input.addEventListener("keydown", function (event) {
    // Enter sends, Shift+Enter is a new line; never while an IME is composing (拼音 input)
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) return;
    event.preventDefault();
    submitTyped();
  });

  log.addEventListener("click", function (event) {
    var chip = event.target.closest ? event.target.closest(".chip") : null;
    if (!chip || chip.disabled) return;
    var retryId = chip.getAttribute("data-retry");
    if (retryId) {
      resend(retryId);
      return;
    }
    send(chip.textContent, chip.getAttribute("data-payload"), false);
  });

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") {
      sync().then(schedulePoll, schedulePoll);
    } else {
      clearTimeout(pollTimer);
    }
  });

  // ---------------------------------------------------------------- start

  inputChanged();
  refreshTools();
  sync().then(function (ok) {
    if (!ok) {
      addLocal([systemRow("聊天记录暂时加载不了，稍后会自动刷新。", true)], "load-failed");
    }
    scrollToBottom();
    document.documentElement.setAttribute("data-ready", "1");
    schedulePoll();
  });
})();
