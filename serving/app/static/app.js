// The tagging page: ask for tags, correct them, send the correction.
// Every title and tag is put on the page with textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
let current = null; // {title, predicted: [...], model_version}
let tags = [];

function say(text) {
  $("status").textContent = text;
}

async function call(path, body) {
  const reply = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
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

fetch("/api/tags")
  .then((reply) => reply.json())
  .then((data) => {
    for (const tag of data.tags) {
      const option = document.createElement("option");
      option.value = tag;
      $("known-tags").append(option);
    }
  });
