// clearml-core server's page: queues, workers and tasks over the API this origin serves under /api/.
// The session is the HttpOnly cookie auth.login sets; text is always set with textContent.
"use strict";

const REFRESH_MS = 1500;
let selectedTask = null;
let logScroll = "";
let refreshTimer = null;
let queueNames = {};

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(name, data, headers) {
  const response = await fetch(`/api/${name}`, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", ...(headers || {}) },
    body: JSON.stringify(data || {}),
  });
  let envelope = {};
  try {
    envelope = await response.json();
  } catch (error) {
    throw new ApiError(response.status, `${name}: HTTP ${response.status}`);
  }
  if (!response.ok) {
    const meta = envelope.meta || {};
    throw new ApiError(response.status, meta.result_msg || `${name}: HTTP ${response.status}`);
  }
  return envelope.data || {};
}

function basic(user, password) {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  let text = "";
  bytes.forEach((b) => { text += String.fromCharCode(b); });
  return `Basic ${btoa(text)}`;
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return isNaN(date) ? iso : date.toLocaleString();
}

function show(view) {
  $("login").hidden = view !== "login";
  $("board").hidden = view !== "board";
  $("account").hidden = view !== "board";
}

// -- signing in --------------------------------------------------------------------------------

async function start() {
  try {
    const me = await api("users.get_current_user");
    $("who").textContent = me.user ? me.user.name : "";
    show("board");
    await refresh();
    schedule();
  } catch (error) {
    if (error.status !== 401) throw error;
    const mode = await api("auth.fixed_users_mode").catch(() => ({ enabled: true }));
    $("password-row").hidden = !mode.enabled;
    show("login");
  }
}

async function signIn(event) {
  event.preventDefault();
  $("login-error").textContent = "";
  try {
    await api("auth.login", {}, { Authorization: basic($("username").value, $("password").value) });
    $("password").value = "";
    await start();
  } catch (error) {
    $("login-error").textContent = error.message;
  }
}

async function signOut() {
  clearTimeout(refreshTimer);
  await api("auth.logout").catch(() => {});
  selectedTask = null;
  $("task-detail").hidden = true;
  show("login");
}

async function newKey() {
  try {
    const made = await api("auth.create_credentials", { label: "made on the web page" });
    const key = made.credentials;
    $("key-text").textContent =
      `api {\n    credentials {\n        access_key: "${key.access_key}"\n        secret_key: "${key.secret_key}"\n    }\n}`;
    $("key-box").hidden = false;
  } catch (error) {
    $("board-error").textContent = error.message;
  }
}

function keyDone() {
  $("key-text").textContent = "";
  $("key-box").hidden = true;
}

// -- the board ---------------------------------------------------------------------------------

function schedule() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(async () => {
    try {
      await refresh();
    } catch (error) {
      if (error.status === 401) { show("login"); return; }
      $("board-error").textContent = error.message;
    }
    schedule();
  }, REFRESH_MS);
}

async function refresh() {
  const [queues, workers, tasks] = await Promise.all([
    api("queues.get_all", { order_by: ["name"] }),
    api("workers.get_all"),
    api("tasks.get_all", {
      order_by: ["-last_update"],
      page_size: 200,
      page: 0,
      only_fields: ["name", "project", "status", "last_worker", "last_update", "execution.queue", "status_message"],
    }),
  ]);
  $("board-error").textContent = "";
  drawQueues(queues.queues || []);
  drawWorkers(workers.workers || []);
  drawTasks(tasks.tasks || []);
  if (selectedTask) await drawDetail();
}

function drawQueues(queues) {
  const body = $("queues").querySelector("tbody");
  body.replaceChildren();
  const target = $("target-queue");
  const chosen = target.value;
  target.replaceChildren();
  queueNames = {};
  for (const queue of queues) {
    queueNames[queue.id] = queue.name;
    const row = document.createElement("tr");
    row.dataset.queue = queue.name;
    cell(row, queue.name);
    cell(row, (queue.entries || []).length, "waiting");
    cell(row, (queue.entries || [])[0] ? queue.entries[0].task : "");
    body.appendChild(row);
    const option = document.createElement("option");
    option.value = queue.id;
    option.textContent = queue.name;
    target.appendChild(option);
  }
  if (chosen) target.value = chosen;
}

function drawWorkers(workers) {
  const body = $("workers").querySelector("tbody");
  body.replaceChildren();
  for (const worker of workers) {
    const row = document.createElement("tr");
    row.dataset.worker = worker.id;
    cell(row, worker.id);
    cell(row, (worker.queues || []).map((q) => q.name).join(", "));
    cell(row, worker.task ? worker.task.name || worker.task.id : "", "running");
    cell(row, when(worker.last_report_time));
    body.appendChild(row);
  }
}

function action(row, label, name, run) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = label;
  button.dataset.action = name;
  button.addEventListener("click", async (event) => {
    event.stopPropagation();
    try {
      await run();
      await refresh();
    } catch (error) {
      $("board-error").textContent = error.message;
    }
  });
  row.lastChild.appendChild(button);
}

function drawTasks(tasks) {
  const body = $("tasks").querySelector("tbody");
  body.replaceChildren();
  for (const task of tasks) {
    const row = document.createElement("tr");
    row.className = "task" + (task.id === selectedTask ? " selected" : "");
    row.dataset.taskId = task.id;
    cell(row, task.name, "name");
    cell(row, task.project || "");
    const status = task.status === "in_progress" && task.status_message === "stopping" ? "stopping" : task.status;
    cell(row, status, `status ${task.status}`);
    cell(row, task.last_worker || "");
    cell(row, when(task.last_update));
    cell(row, "");
    const queue = () => $("target-queue").value;
    if (task.status === "created") {
      action(row, "Enqueue", "enqueue", () => api("tasks.enqueue", { task: task.id, queue: queue() }));
    }
    if (task.status === "queued" || task.status === "in_progress") {
      action(row, "Abort", "abort", () => api("tasks.stop", { task: task.id }));
    }
    if (["stopped", "failed", "completed"].includes(task.status)) {
      const again = (task.execution && task.execution.queue) || queue();
      action(row, "Re-queue", "requeue", () => api("tasks.enqueue", { task: task.id, queue: again }));
    }
    row.addEventListener("click", () => select(task.id));
    body.appendChild(row);
  }
}

async function select(taskId) {
  if (selectedTask !== taskId) {
    selectedTask = taskId;
    logScroll = "";
    $("task-log").textContent = "";
  }
  $("task-detail").hidden = false;
  document.querySelectorAll("tr.task").forEach((row) => row.classList.toggle("selected", row.dataset.taskId === taskId));
  await drawDetail();
}

async function drawDetail() {
  const taskId = selectedTask;
  const record = (await api("tasks.get_by_id", { task: taskId })).task;
  if (taskId !== selectedTask) return;
  $("detail-name").textContent = record.name;
  $("detail-status").textContent = record.status;
  $("detail-status").className = `status ${record.status}`;
  $("task-record").textContent = JSON.stringify(record, null, 2);
  if (record.status === "created" || record.status === "queued") {
    if (logScroll) { logScroll = ""; $("task-log").textContent = ""; }  // a reset task starts a new log
  }
  for (;;) {
    const page = await api("events.get_task_events", { task: taskId, event_type: "log", scroll_id: logScroll, batch_size: 500 });
    if (taskId !== selectedTask) return;
    logScroll = page.scroll_id || logScroll;
    const events = page.events || [];
    for (const event of events) $("task-log").textContent += event.msg + "\n";
    if (events.length < 500) break;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("new-key").addEventListener("click", newKey);
  $("key-done").addEventListener("click", keyDone);
  start().catch((error) => { $("login-error").textContent = error.message; show("login"); });
});
