// keyclient: keeps the operations list current and counts down the time left.
// The page works without it (reload by hand); no external code is loaded.
"use strict";

function formatLeft(ms) {
  if (ms <= 0) return "expired";
  const s = Math.floor(ms / 1000);
  const pad = (n) => String(n).padStart(2, "0");
  if (s >= 3600) return Math.floor(s / 3600) + "h " + pad(Math.floor((s % 3600) / 60)) + "m";
  if (s >= 60) return Math.floor(s / 60) + "m " + pad(s % 60) + "s";
  return s + "s";
}

function tick() {
  const now = Date.now();
  for (const t of document.querySelectorAll("time.left[data-expires-ms]")) {
    const text = formatLeft(Number(t.dataset.expiresMs) - now);
    if (t.textContent !== text) t.textContent = text;
  }
}

async function poll(live) {
  try {
    const r = await fetch(live.dataset.stateUrl, { cache: "no-store", credentials: "same-origin" });
    if (r.status === 401) {
      window.location.assign("/ui/login");
      return;
    }
    if (r.ok) {
      const state = await r.json();
      if (state.version !== live.dataset.version) {
        document.getElementById("ops").innerHTML = state.html;
        live.dataset.version = state.version;
        tick();
      }
    }
  } catch (e) {
    // The server may be restarting; try again on the next round.
  }
  window.setTimeout(() => poll(live), 2000);
}

document.addEventListener("DOMContentLoaded", () => {
  tick();
  window.setInterval(tick, 1000);
  const live = document.getElementById("live");
  if (live) window.setTimeout(() => poll(live), 2000);
});
