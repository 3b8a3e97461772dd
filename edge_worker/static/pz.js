/* pz.js: interaction beacons and slot refresh for pz edge personalization. No dependencies.
   Declare events with data-pz-event="click|add_to_cart|purchase" data-pz-item data-pz-category
   data-pz-value; the page's own item with <body data-pz-item data-pz-category>; slots with
   data-pz-slot="NAME". Sends nothing when the visitor opted out (GPC, DNT, or pzConsent=false). */
(function () {
  "use strict";
  var d = document, w = window, base = "";
  var me = d.currentScript;
  if (me && me.getAttribute("data-pz-endpoint")) base = me.getAttribute("data-pz-endpoint").replace(/\/$/, "");

  function optedOut() {
    var n = w.navigator || {};
    return n.globalPrivacyControl === true || n.doNotTrack === "1" || w.doNotTrack === "1" ||
      w.pzConsent === false || d.documentElement.getAttribute("data-pz-consent") === "false";
  }
  function session() {
    try {
      var s = w.sessionStorage.getItem("pz_sid");
      if (!s) { s = Math.random().toString(36).slice(2, 14); w.sessionStorage.setItem("pz_sid", s); }
      return s;
    } catch (e) { return ""; }
  }
  function send(ev) {
    if (optedOut()) return false;
    ev.ts = Date.now();
    ev.path = w.location.pathname;
    var sid = session();
    if (sid) ev.session = sid;
    var body = JSON.stringify(ev), url = base + "/pz/collect";
    if (w.navigator.sendBeacon && w.navigator.sendBeacon(url, body)) return true;
    if (w.fetch) w.fetch(url, {method: "POST", body: body, keepalive: true, credentials: "same-origin",
      headers: {"Content-Type": "application/json"}});
    return true;
  }
  function fill(tpl, id) { return tpl.split("{id}").join(encodeURIComponent(id)); }
  // Text and attribute values alike: a quote in an id must not end the attribute it is written in.
  var ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"};
  function text(s) { return String(s).replace(/[&<>"']/g, function (c) { return ENTITIES[c]; }); }
  function render(el, slot) {
    el.setAttribute("data-pz-rule", slot.rule || "");
    if (slot.html !== undefined) { el.innerHTML = slot.html; return; }  // fragments are escaped by the edge
    if (!slot.items) return;
    var href = el.getAttribute("data-pz-item-href") || "#", img = el.getAttribute("data-pz-item-img");
    var out = [];
    for (var i = 0; i < slot.items.length; i++) {
      var id = slot.items[i].id;
      out.push('<a class="pz-item" data-pz-event="click" data-pz-item="' + text(id) + '" data-pz-token="' +
        text(slot.items[i].token || "") + '" href="' + text(fill(href, id)) + '">' +
        (img ? '<img alt="' + text(id) + '" src="' + text(fill(img, id)) + '">' : text(id)) + "</a>");
    }
    el.innerHTML = out.join("");
  }
  function refresh() {
    if (optedOut() || !w.fetch) return Promise.resolve(null);
    var els = d.querySelectorAll("[data-pz-slot]"), names = [], seen = {};
    for (var i = 0; i < els.length; i++) {
      var n = els[i].getAttribute("data-pz-slot");
      if (!seen[n]) { seen[n] = 1; names.push(n); }
    }
    if (!names.length) return Promise.resolve(null);
    var q = "?slots=" + encodeURIComponent(names.join(",")) + "&path=" +
      encodeURIComponent((w.location.pathname + w.location.search).slice(0, 1024));
    if (d.referrer) q += "&ref=" + encodeURIComponent(d.referrer.slice(0, 512));
    return w.fetch(base + "/pz/decide" + q, {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (res) {
        if (!res) return null;
        for (var j = 0; j < els.length; j++) {
          var s = res.slots[els[j].getAttribute("data-pz-slot")];
          if (s) render(els[j], s);
        }
        d.documentElement.setAttribute("data-pz-ready", "1");
        return res;
      })["catch"](function () { return null; });
  }
  function track(type, item, category, value, el) {
    var ev = {type: type};
    if (item) ev.item = item;
    if (category) ev.category = category;
    if (value) ev.value = parseFloat(value);
    var token = el && el.getAttribute ? el.getAttribute("data-pz-token") : null;
    if (token) ev.attribution = {token: token};  // signed by the edge: credits the slot, rule and variant
    var sent = send(ev);
    if (sent && type !== "page_view") setTimeout(refresh, 250);  // let the edge see it first
    return sent;
  }
  d.addEventListener("click", function (e) {
    var el = e.target && e.target.closest ? e.target.closest("[data-pz-event]") : null;
    if (!el) return;
    track(el.getAttribute("data-pz-event"), el.getAttribute("data-pz-item"), el.getAttribute("data-pz-category"),
      el.getAttribute("data-pz-value"), el);
  }, true);
  function start() {
    var b = d.body;
    track("page_view", b.getAttribute("data-pz-item"), b.getAttribute("data-pz-category"), null, null);
    refresh();
  }
  w.pz = {track: track, refresh: refresh, optedOut: optedOut};
  if (d.readyState === "loading") d.addEventListener("DOMContentLoaded", start); else start();
})();
