import GameRules
/// The site's one script (vanilla JS, no build step). It enhances server-rendered pages: name
/// validation with the server's rule and messages, the claim URL, claiming in place, the period
/// switch, and live updates by polling the JSON API with `If-None-Match` (a 304 costs nothing).
/// Data is written with textContent/createElement only, never as HTML.
enum WebScript {
    static let js = #"""
    'use strict';
    (function () {
      var RULE = 'a name is 1\u201340 characters of ASCII letters, digits and @ / : . ^ + ! - _ *';
      var RESERVED = function (b) { return b === 0 || b === 10 || b === 127 || b >= 224; };
      var HUES = 72;
      var body = document.body;
      var page = body.getAttribute('data-page');

      function allowed(c) {
        return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || '@/:.^+!-_*'.indexOf(String.fromCharCode(c)) >= 0;
      }
      // The server's PlayerName rule and messages (positions count UTF-8 bytes, like the server).
      function validateName(text) {
        var bytes = new TextEncoder().encode(text);
        if (bytes.length === 0) return 'empty name; ' + RULE;
        for (var i = 0; i < bytes.length; i++) {
          if (!allowed(bytes[i])) return 'invalid character at position ' + (i + 1) + '; ' + RULE;
        }
        if (bytes.length > 40) return 'name is ' + bytes.length + ' characters long; ' + RULE;
        return null;
      }
      function hueClass(name) {
        var h = 0x811c9dc5;
        var bytes = new TextEncoder().encode(name);
        for (var i = 0; i < bytes.length; i++) { h = Math.imul(h ^ bytes[i], 16777619) >>> 0; }
        return 'h' + (h % HUES);
      }
      // Percent-encodes all but unreserved characters, exactly like the server's links.
      function encodeName(name) {
        return encodeURIComponent(name).replace(/[!'()*]/g, function (c) {
          return '%' + c.charCodeAt(0).toString(16).toUpperCase();
        });
      }
      function playerHref(name) {
        if (name === '.' || name === '..') return '/user.html?name=' + encodeName(name);
        return '/players/' + encodeName(name);
      }
      function ago(seconds) {
        var s = Math.max(0, Math.round(seconds));
        if (s < 60) return s + ' s ago';
        if (s < 3600) return Math.floor(s / 60) + ' min ago';
        if (s < 86400) return Math.floor(s / 3600) + ' h ago';
        return Math.floor(s / 86400) + ' d ago';
      }
      function el(tag, cls, text) {
        var e = document.createElement(tag);
        if (cls) e.className = cls;
        if (text !== undefined && text !== null) e.textContent = String(text);
        return e;
      }
      function link(href, cls, text) { var a = el('a', cls, text); a.href = href; return a; }
      function plural(n, one, many) { return n + ' ' + (n === 1 ? one : many); }
      function $(id) { return document.getElementById(id); }
      // The server's clock minus ours, from the page's data-now, so "N s ago" is right even if
      // the visitor's clock is off.
      var skew = (Number(body.getAttribute('data-now')) || Date.now() / 1000) - Date.now() / 1000;
      function serverNow() { return Date.now() / 1000 + skew; }

      // Conditional GET: keeps each URL's ETag and last body; resolves to null on 304.
      var etags = {};
      var bodies = {};
      function poll(url, force) {
        var headers = {};
        if (etags[url] && !force) headers['If-None-Match'] = etags[url];
        return fetch(url, { cache: 'no-store', headers: headers, credentials: 'same-origin' }).then(function (r) {
          if (r.status === 304) return null;
          if (!r.ok) throw new Error(url + ': HTTP ' + r.status);
          var tag = r.headers.get('ETag');
          return r.json().then(function (json) {
            if (tag) etags[url] = tag;
            bodies[url] = json;
            return json;
          });
        });
      }

      // ---- claim form -------------------------------------------------------------------
      function setupClaim() {
        var form = $('claim-form');
        if (!form) return;
        var input = $('claim-name'), msg = $('claim-msg'), url = $('claim-url'), copy = $('claim-copy');
        function update() {
          var name = input.value;
          var problem = name === '' ? null : validateName(name);
          input.setCustomValidity(problem || '');
          input.setAttribute('aria-invalid', problem ? 'true' : 'false');
          msg.textContent = problem || '';
          msg.className = problem ? 'msg bad' : 'msg';
          url.textContent = location.origin + '/claim?name=' + encodeURIComponent(name || 'NAME');
        }
        input.addEventListener('input', update);
        update();
        if (copy) {
          copy.hidden = false;
          copy.addEventListener('click', function () {
            var text = url.textContent;
            var done = function () { msg.textContent = 'Copied ' + text; msg.className = 'msg good'; };
            if (navigator.clipboard && navigator.clipboard.writeText) {
              navigator.clipboard.writeText(text).then(done, function () { selectText(url); });
            } else { selectText(url); }
          });
        }
        form.addEventListener('submit', function (ev) {
          ev.preventDefault();
          var problem = validateName(input.value);
          if (problem) { msg.textContent = problem; msg.className = 'msg bad'; input.focus(); return; }
          msg.textContent = 'Claiming\u2026'; msg.className = 'msg';
          fetch('/claim?name=' + encodeURIComponent(input.value), { headers: { Accept: 'application/json' }, cache: 'no-store' })
            .then(function (r) {
              return r.json().then(function (j) {
                if (!r.ok) throw new Error(j.error || ('HTTP ' + r.status));
                msg.textContent = j.message; msg.className = 'msg good';
                refresh();
              });
            })
            .catch(function (e) { msg.textContent = 'Not claimed: ' + e.message; msg.className = 'msg bad'; });
        });
      }
      function selectText(node) {
        var range = document.createRange();
        range.selectNodeContents(node);
        var sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
      }

      // ---- home: map, leaderboard, recent ------------------------------------------------
      var period = body.getAttribute('data-period') || 'all';
      var showAllBoard = body.getAttribute('data-board-all') === '1';
      var showAllRecent = body.getAttribute('data-recent-all') === '1';
      var updatedAt = Number(body.getAttribute('data-updated')) || 0;

      function renderTile(b) {
        var li = $('b-' + b.block);
        if (!li) return;
        var before = li.getAttribute('data-holder') || '';
        var holder = b.holder || (b.tied ? ' tied' : '');
        var cls = 'tile';
        if (RESERVED(b.block)) cls += ' reserved';
        if (b.holder) cls += ' ' + hueClass(b.holder);
        else if (b.tied) cls += ' tied';
        else cls += ' empty';
        var who = li.querySelector('.who'), n = li.querySelector('.n');
        var whoNew, nText = '';
        if (b.holder) {
          whoNew = link(playerHref(b.holder), 'who', b.holder);
          nText = String(b.count);
          li.title = b.block + '.0.0.0/8: ' + b.holder + ' with ' + plural(b.count, 'address', 'addresses');
        } else if (b.tied) {
          whoNew = el('span', 'who', 'tied');
          nText = String(b.count);
          li.title = b.block + '.0.0.0/8: tied at ' + plural(b.count, 'address', 'addresses') + ' each';
        } else {
          whoNew = el('span', 'who', '\u2014');
          li.title = b.block + '.0.0.0/8: nobody yet';
        }
        who.replaceWith(whoNew);
        n.textContent = nText;
        if (before !== holder && li.hasAttribute('data-holder')) cls += ' flash';
        li.setAttribute('data-holder', holder);
        li.className = cls;
        if (cls.indexOf('flash') >= 0) {
          setTimeout(function () { li.classList.remove('flash'); }, 2100);
        }
      }
      function renderBlocks(doc) {
        // The API lists the claimed blocks only: any other is empty.
        var listed = {};
        doc.blocks.forEach(function (b) { listed[b.block] = true; renderTile(b); });
        for (var i = 0; i < 256; i++) if (!listed[i]) renderTile({ block: i, holder: null, tied: false, count: 0 });
        updatedAt = Math.max(updatedAt, doc.updated_at);
      }
      function renderBoard(doc) {
        var list = $('board');
        if (!list) return;
        var players = doc.players;
        var shown = showAllBoard ? players.slice(0, 1000) : players.slice(0, 10);
        var items = shown.map(function (p) {
          var li = el('li');
          li.appendChild(el('span', 'rank', p.rank));
          li.appendChild(link(playerHref(p.name), 'name', p.name));
          li.appendChild(el('span', 'stats', plural(p.block_count, 'block', 'blocks') + ', ' + plural(p.addresses, 'address', 'addresses')));
          return li;
        });
        list.replaceChildren.apply(list, items);
        var empty = $('board-empty');
        if (empty) empty.hidden = players.length > 0;
        var more = $('board-more');
        if (more) {
          more.hidden = players.length <= 10;
          more.textContent = showAllBoard ? 'Show top 10' : 'Show all ' + players.length;
          more.setAttribute('aria-expanded', showAllBoard ? 'true' : 'false');
          more.href = '/?period=' + period + (showAllBoard ? '' : '&board=all') + '#leaderboard';
        }
        document.querySelectorAll('.periods a[data-period]').forEach(function (a) {
          if (a.getAttribute('data-period') === period) a.setAttribute('aria-current', 'true');
          else a.removeAttribute('aria-current');
        });
      }
      function renderRecent(doc) {
        var list = $('recent');
        if (!list) return;
        var claims = showAllRecent ? doc.claims : doc.claims.slice(0, 10);
        var items = claims.map(function (c) {
          var li = el('li');
          li.appendChild(el('span', 'ip', c.ip));
          li.appendChild(document.createTextNode('by'));
          li.appendChild(link(playerHref(c.name), 'name', c.name));
          var t = el('time', null, ago(serverNow() - c.claimed_at));
          t.setAttribute('datetime', new Date(c.claimed_at * 1000).toISOString());
          t.setAttribute('data-t', c.claimed_at);
          li.appendChild(t);
          return li;
        });
        list.replaceChildren.apply(list, items);
        var empty = $('recent-empty');
        if (empty) empty.hidden = doc.claims.length > 0;
        var more = $('recent-more');
        if (more) {
          more.hidden = doc.claims.length <= 10;
          more.textContent = showAllRecent ? 'Show 10' : 'Show all ' + doc.claims.length;
          more.setAttribute('aria-expanded', showAllRecent ? 'true' : 'false');
        }
        updatedAt = Math.max(updatedAt, doc.updated_at);
      }
      function tick() {
        var u = $('updated');
        if (u && updatedAt) {
          u.textContent = ago(serverNow() - updatedAt);
          u.setAttribute('data-updated', updatedAt);
        }
        document.querySelectorAll('ol.recent time[data-t]').forEach(function (t) {
          t.textContent = ago(serverNow() - Number(t.getAttribute('data-t')));
        });
      }
      var failures = 0;
      function refresh() {
        var jobs = [
          poll('/api/blocks?period=all').then(function (d) { if (d) renderBlocks(d); }),
          poll('/api/leaderboard?period=' + period).then(function (d) { if (d) renderBoard(d); }),
          poll('/api/recent').then(function (d) { if (d) renderRecent(d); })
        ];
        return Promise.all(jobs).then(function () {
          failures = 0;
          var s = $('live');
          if (s) s.textContent = 'live';
          tick();
        }, function () {
          failures++;
          var s = $('live');
          if (s) s.textContent = 'offline, retrying';
        });
      }
      function setupHome() {
        var interval = Number(body.getAttribute('data-poll')) || 2000;
        // The page was rendered from these snapshots: until they change, polls answer 304.
        [['/api/blocks?period=all', 'data-etag-blocks'], ['/api/leaderboard?period=' + period, 'data-etag-board'],
         ['/api/recent', 'data-etag-recent']].forEach(function (pair) {
          var tag = body.getAttribute(pair[1]);
          if (tag) etags[pair[0]] = tag;
        });
        document.querySelectorAll('.periods a[data-period]').forEach(function (a) {
          a.addEventListener('click', function (ev) {
            ev.preventDefault();
            period = a.getAttribute('data-period');
            history.replaceState(null, '', '/?period=' + period + (showAllBoard ? '&board=all' : '') + '#leaderboard');
            var url = '/api/leaderboard?period=' + period;
            if (bodies[url]) renderBoard(bodies[url]);
            poll(url, !bodies[url]).then(function (d) { if (d) renderBoard(d); }, function () {});
          });
        });
        var boardMore = $('board-more');
        if (boardMore) boardMore.addEventListener('click', function (ev) {
          ev.preventDefault();
          showAllBoard = !showAllBoard;
          var url = '/api/leaderboard?period=' + period;
          if (bodies[url]) renderBoard(bodies[url]);
          else poll(url, true).then(function (d) { if (d) renderBoard(d); }, function () {});
        });
        var recentMore = $('recent-more');
        if (recentMore) recentMore.addEventListener('click', function (ev) {
          ev.preventDefault();
          showAllRecent = !showAllRecent;
          if (bodies['/api/recent']) renderRecent(bodies['/api/recent']);
          else poll('/api/recent', true).then(function (d) { if (d) renderRecent(d); }, function () {});
        });
        document.querySelectorAll('#map .tile').forEach(function (li) {
          li.setAttribute('data-holder', li.getAttribute('data-holder') || '');
        });
        function loop() {
          var wait = interval * Math.min(8, Math.pow(2, failures));
          setTimeout(function () {
            if (document.hidden) { loop(); return; }
            refresh().then(loop, loop);
          }, wait);
        }
        refresh().then(loop, loop);
        setInterval(tick, 1000);
      }

      // Links that act as buttons answer Space like buttons do (Enter already works).
      document.addEventListener('keydown', function (ev) {
        var t = ev.target;
        if (ev.key === ' ' && t && t.tagName === 'A' && t.getAttribute('role') === 'button') {
          ev.preventDefault();
          t.click();
        }
      });

      setupClaim();
      if (page === 'home') setupHome();
    })();

    """#
}
