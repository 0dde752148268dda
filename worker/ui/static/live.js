// Live incident page: new timeline entries and refreshed sections over server-sent events.
// Every fragment is HTML rendered (and escaped) by the server's templates; this file only
// places it. No other script runs on the dashboard.
(function () {
  "use strict";
  var page = document.querySelector("[data-live]");
  if (!page || !window.EventSource) {
    return;
  }
  var timeline = document.getElementById("timeline");
  var badge = document.getElementById("live-state");
  var url = page.getAttribute("data-live") +
    "?after=" + encodeURIComponent(page.getAttribute("data-after") || "") +
    "&v=" + encodeURIComponent(page.getAttribute("data-version") || "");
  var source = new EventSource(url);

  function say(text, cls) {
    if (badge) {
      badge.textContent = text;
      badge.className = "live-state " + cls;
    }
  }

  function fragment(html) {
    var holder = document.createElement("template");
    holder.innerHTML = html;
    return holder.content;
  }

  source.addEventListener("open", function () { say("live", "ok"); });
  source.addEventListener("error", function () { say("reconnecting…", "warn"); });
  source.addEventListener("entry", function (event) {
    var item = fragment(event.data);
    var first = item.firstElementChild;
    // A reconnect may replay an entry the page already shows.
    if (first && document.querySelector('[data-id="' + first.getAttribute("data-id") + '"]')) {
      return;
    }
    timeline.insertBefore(item, timeline.firstChild);
  });
  source.addEventListener("section", function (event) {
    var cut = event.data.indexOf("\n");
    var name = event.data.slice(0, cut);
    var target = document.querySelector('[data-section="' + name + '"]');
    if (target) {
      target.replaceChildren(fragment(event.data.slice(cut + 1)));
    }
  });
  source.addEventListener("problem", function (event) { say(event.data, "warn"); });
  source.addEventListener("gone", function (event) {
    say(event.data, "warn");
    source.close();
  });
})();
