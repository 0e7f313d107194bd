// The tagging page: ask for tags, correct them, send the correction.
// Every title and tag is put on the page with textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
let current = null; // {title, predicted: [...], model_version}
let tags = [];

function say(text) {
  $("status").textContent = text;
}

// A reviewer's token (local sign-in) lives for this tab only; behind Identity-Aware
// Proxy the proxy adds the identity and no token is needed.
function headers(extra) {
  const token = sessionStorage.getItem("token");
  return token ? { ...extra, Authorization: "Bearer " + token } : extra;
}

async function call(path, body, method) {
  const reply = await fetch(path, {
    method: method || "POST",
    headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await reply.json().catch(() => ({ error: reply.statusText }));
  if (!reply.ok) throw new Error(data.error || reply.statusText);
  return data;
}

function render() {
  const list = $("tags");
  list.replaceChildren();
  for (const tag of tags) {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = tag.tag;
    item.append(name);
    if (tag.score !== undefined) {
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = tag.score.toFixed(2);
      item.append(score);
    }
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "×";
    remove.setAttribute("aria-label", "remove " + tag.tag);
    remove.addEventListener("click", () => {
      tags = tags.filter((t) => t !== tag);
      render();
      $("new-tag").focus();
    });
    item.append(remove);
    list.append(item);
  }
}

$("ask").addEventListener("submit", async (event) => {
  event.preventDefault();
  say("Asking the model…");
  try {
    const answer = await call("/api/predict", { title: $("title").value });
    current = {
      title: answer.title,
      predicted: answer.tags.map((t) => t.tag),
      model_version: answer.model_version,
    };
    tags = answer.tags.slice();
    $("asked").textContent = answer.title;
    $("version").textContent = answer.model_version;
    $("candidates").textContent =
      answer.candidates.map((t) => `${t.tag} (${t.score.toFixed(2)})`).join(", ") || "none";
    $("result").hidden = false;
    render();
    say(tags.length ? "" : "The model is not sure: add the tags that fit.");
  } catch (err) {
    say("Could not get tags: " + err.message);
  }
});

$("add").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("new-tag").value.trim().toLowerCase();
  if (text && !tags.some((t) => t.tag === text)) tags.push({ tag: text });
  $("new-tag").value = "";
  say("");
  render();
});

$("send").addEventListener("click", async () => {
  if (!current) return;
  if (!tags.length) {
    say("Add at least one tag before sending.");
    return;
  }
  try {
    const stored = await call("/api/feedback", {
      title: current.title,
      predicted: current.predicted,
      actual: tags.map((t) => t.tag),
      model_version: current.model_version,
    });
    const review = stored.review ? ` (new tags wait for review: ${stored.review.join(", ")})` : "";
    say(`Thank you: feedback #${stored.id} stored${review}.`);
  } catch (err) {
    say("Could not store the feedback: " + err.message);
  }
});

// --- the review view, shown to reviewers and operators only -----------------------------

let after = null;

function button(text, onClick, className) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  if (className) b.className = className;
  b.addEventListener("click", onClick);
  return b;
}

async function decide(row, item, action, alias) {
  try {
    const done = await call(
      `/api/review/tags/${encodeURIComponent(row.tag)}:${action}`,
      alias ? { alias_of: alias } : {},
    );
    const how = alias ? `as ${alias}` : done.awaiting_schema_change ? "(waits for the schema)" : "";
    $("review-status").textContent =
      `${row.tag}: ${action}ed ${how}, ${done.samples_released} samples released.`;
    const next = item.nextElementSibling || item.previousElementSibling;
    item.remove();
    (next ? next.querySelector("button, input") : $("review-heading")).focus();
  } catch (err) {
    $("review-status").textContent = `Could not ${action} ${row.tag}: ${err.message}`;
  }
}

function reviewItem(row) {
  const item = document.createElement("li");
  const heading = document.createElement("h3");
  heading.textContent = row.tag;
  const counts = document.createElement("p");
  counts.className = "meta";
  const top = row.top_sources.map((s) => `${s.source} (${s.samples})`).join(", ");
  counts.textContent = `${row.samples_waiting} samples from ${row.sources} sources: ${top}`;
  const examples = document.createElement("ul");
  for (const title of row.examples) {
    const li = document.createElement("li");
    li.textContent = title;
    examples.append(li);
  }
  const label = document.createElement("label");
  const aliasId = "alias-" + row.tag;
  label.htmlFor = aliasId;
  label.textContent = `Alias of a known tag for ${row.tag}`;
  const alias = document.createElement("input");
  alias.id = aliasId;
  alias.setAttribute("list", "known-tags");
  alias.autocomplete = "off";
  const actions = document.createElement("div");
  actions.className = "row";
  actions.append(
    alias,
    button("Accept as alias", () => {
      if (!alias.value.trim()) {
        $("review-status").textContent = "Type the known tag it stands for first.";
        alias.focus();
        return;
      }
      decide(row, item, "accept", alias.value.trim().toLowerCase());
    }),
    button("Accept as new tag", () => decide(row, item, "accept")),
    button("Reject", () => decide(row, item, "reject"), "reject"),
  );
  item.append(heading, counts, examples, label, actions);
  return item;
}

async function loadQueue() {
  const query = new URLSearchParams({ status: "pending_review", limit: "20" });
  if (after) query.set("after", after);
  try {
    const page = await call("/api/review/tags?" + query, undefined, "GET");
    for (const row of page.tags) $("queue").append(reviewItem(row));
    after = page.next;
    $("more").hidden = !after;
    if (!$("queue").children.length) $("review-status").textContent = "Nothing waits for review.";
  } catch (err) {
    $("review-status").textContent = "Could not load the review queue: " + err.message;
  }
}

// --- the release view, shown to operators only ----------------------------------------
async function loadRelease() {
  const state = await call("/api/rollout", undefined, "GET");
  const release = state.release;
  $("release-stable").textContent = release.stable || "none";
  $("release-canary").textContent = release.canary || "none";
  $("release-mode").textContent =
    release.mode === "canary" ? `canary for ${Math.round(release.share * 100)} % of clients` : release.mode;
  $("promote").disabled = $("rollback").disabled = !release.canary;
  const list = $("release-events");
  list.replaceChildren();
  for (const event of state.events.slice().reverse()) {
    const item = document.createElement("li");
    const when = new Date(event.at * 1000).toISOString().replace("T", " ").slice(0, 19);
    item.textContent = `${when} version ${event.version} ${event.action} by ${event.actor}: ${event.reason}`;
    list.append(item);
  }
}

async function act(action) {
  const reason = $("release-reason").value.trim();
  if (action === "rollback" && !reason) {
    $("release-status").textContent = "Say why the canary is rolled back.";
    $("release-reason").focus();
    return;
  }
  try {
    await call(`/api/rollout:${action}`, reason ? { reason } : {});
    $("release-status").textContent = action === "promote" ? "Promoted." : "Rolled back.";
    $("release-reason").value = "";
    await loadRelease();
  } catch (err) {
    $("release-status").textContent = `Could not ${action}: ${err.message}`;
  }
}

$("promote").addEventListener("click", () => act("promote"));
$("rollback").addEventListener("click", () => act("rollback"));

async function showReviewIfAllowed() {
  try {
    const me = await call("/api/whoami", undefined, "GET");
    if (me.role === "operator") {
      $("release").hidden = false;
      await loadRelease();
    }
    if (me.role !== "reviewer" && me.role !== "operator") return false;
    $("review").hidden = false;
    $("sign-in").hidden = true;
    $("queue").replaceChildren();
    after = null;
    await loadQueue();
    return true;
  } catch (err) {
    sessionStorage.removeItem("token");
    return false;
  }
}

$("more").addEventListener("click", loadQueue);

$("token-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  sessionStorage.setItem("token", $("token").value.trim());
  $("token").value = "";
  if (await showReviewIfAllowed()) $("review-heading").focus();
  else say("That token is not a reviewer's.");
});

$("review-heading").tabIndex = -1;
showReviewIfAllowed();

fetch("/api/tags")
  .then((reply) => reply.json())
  .then((data) => {
    for (const tag of data.tags) {
      const option = document.createElement("option");
      option.value = tag;
      $("known-tags").append(option);
    }
  });
