// billmig console: draws execution graphs with Graphviz (viz.js, shipped beside this file) and keeps live pages
// fresh by re-reading them from the server while anything on them is running. No request leaves the console.
"use strict";

const REFRESH_MS = 1500;
let vizReady = null;

async function drawGraphs(root) {
  const holders = root.querySelectorAll(".graph[data-dot]");
  if (!holders.length || typeof Viz === "undefined") return;
  vizReady = vizReady || Viz.instance();
  const viz = await vizReady;
  for (const holder of holders) {
    try {
      const svg = viz.renderSVGElement(holder.dataset.dot);
      holder.replaceChildren(svg);
      holder.dataset.rendered = "1";
    } catch (error) {
      holder.textContent = "graph: " + error;
      holder.dataset.rendered = "error";
    }
  }
}

async function refresh() {
  const main = document.getElementById("content");
  if (!main || !main.dataset.live) return;
  try {
    const response = await fetch(location.href, { headers: { "Accept": "text/html" }, cache: "no-store" });
    if (response.ok) {
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById("content");
      if (fresh) {
        const graph = fresh.querySelector(".graph[data-dot]");
        const old = main.querySelector(".graph[data-dot]");
        const sameGraph = graph && old && graph.dataset.dot === old.dataset.dot;
        if (sameGraph) graph.replaceWith(old);  // unchanged: keep the drawn one (no flicker)
        main.replaceWith(fresh);
        if (!sameGraph) await drawGraphs(fresh);
        document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
      }
    }
  } catch (error) {
    console.warn("console refresh failed", error);
  }
  setTimeout(refresh, REFRESH_MS);
}

drawGraphs(document).then(() => setTimeout(refresh, REFRESH_MS));
