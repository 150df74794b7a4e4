// A stand-in for the front end of Capture The IP (CTI), written for IPQuest's compatibility
// tests. It is not CTI's code: it makes the same requests as CTI's cti.js and reads the same
// fields, so a page built for CTI's API works against a server that passes these tests.
//
//   /api/ip              -> v4, ip
//   /api/recent          -> claims[].nick, .ip, .claimed_at (unix seconds)
//   /api/ranks/{period}  -> rankings[].nick, .blocks, .total_claims (period from location.hash)
//   /api/blocks          -> blocks[].block, .is_tied, .nick, .claims; last_updated_at (RFC 3339)
//   /api/users?name=     -> rankings[].block, .rank, .is_tied, .claims; last_updated_at
//
// Progress is published on <body data-ready="..."> (space-separated parts) so a test can wait
// for the page without sleeping; a failed request shows #load-error and sets data-error.
'use strict';
(function () {
  var PERIODS = ['hour', 'day', 'week', 'month', 'year', 'all'];

  function markReady(part) {
    var parts = (document.body.dataset.ready || '').split(' ').filter(function (p) {
      // A re-rendered part replaces its older mark (ranks:week replaces ranks:all).
      return p && p.split(':')[0] !== part.split(':')[0];
    });
    parts.push(part);
    document.body.dataset.ready = parts.join(' ');
  }

  function fail(what, error) {
    var box = document.getElementById('load-error');
    box.hidden = false;
    box.textContent = 'Could not load ' + what + ': ' + error.message;
    document.body.dataset.error = (document.body.dataset.error ? document.body.dataset.error + ' ' : '') + what;
  }

  function getJSON(url) {
    return fetch(url, { headers: { Accept: 'application/json' } }).then(function (res) {
      if (res.status !== 200) throw new Error(url + ' answered ' + res.status);
      return res.json();
    });
  }

  function plural(n, word, many) { return n + ' ' + (n === 1 ? word : many); }

  function ordinal(n) {
    var tens = n % 100;
    if (tens >= 11 && tens <= 13) return n + 'th';
    return n + (['th', 'st', 'nd', 'rd'][n % 10] || 'th');
  }

  // A hue from the name (FNV-1a over UTF-16 code units), so a holder keeps its colour.
  function hueOf(name) {
    var h = 0x811c9dc5;
    for (var i = 0; i < name.length; i++) {
      h ^= name.charCodeAt(i);
      h = Math.imul(h, 16777619) >>> 0;
    }
    return h % 360;
  }

  function playerLink(name) {
    var a = document.createElement('a');
    a.className = 'nick';
    a.href = '/users.html?name=' + encodeURIComponent(name);
    a.textContent = name;
    return a;
  }

  function agoText(millis) {
    var seconds = Math.max(0, (Date.now() - millis) / 1000);
    if (seconds < 60) return Math.round(seconds) + ' seconds ago';
    if (seconds < 3600) return Math.round(seconds / 60) + ' minutes ago';
    if (seconds < 86400) return Math.round(seconds / 3600) + ' hours ago';
    return Math.round(seconds / 86400) + ' days ago';
  }

  function showLastUpdated(text) {
    var el = document.getElementById('last-updated');
    var millis = Date.parse(text);
    el.dataset.raw = text;
    el.dataset.ms = String(millis);
    el.textContent = isNaN(millis) ? '(Last updated: unknown)' : '(Last updated ' + agoText(millis) + ')';
  }

  // Home page.

  function loadIP() {
    return getJSON('/api/ip').then(function (res) {
      if (res.v4) {
        document.getElementById('user-ip').textContent = res.ip;
      } else {
        document.getElementById('ip-note').hidden = false;
      }
      markReady('ip');
    });
  }

  function currentPeriod() {
    var wanted = location.hash.replace(/^#/, '');
    return PERIODS.indexOf(wanted) >= 0 ? wanted : 'all';
  }

  function loadRanks() {
    var period = currentPeriod();
    document.getElementById('rank-period').value = period;
    return getJSON('/api/ranks/' + period).then(function (res) {
      var list = document.getElementById('top-claimers');
      list.textContent = '';
      res.rankings.forEach(function (row) {
        var li = document.createElement('li');
        var total = document.createElement('span');
        total.className = 'total';
        total.textContent = String(row.total_claims);
        var count = document.createElement('b');
        count.className = 'nblocks';
        count.textContent = String(row.blocks.length);
        var blocks = document.createElement('span');
        blocks.className = 'blocks';
        blocks.textContent = row.blocks.join(', ');
        li.append(playerLink(row.nick), ' with ', total, row.total_claims === 1 ? ' address, and ' : ' addresses, and ',
                  count, row.blocks.length === 1 ? ' block controlled: ' : ' blocks controlled: ', blocks);
        list.appendChild(li);
      });
      list.dataset.period = period;
      document.getElementById('no-claimers').textContent = res.rankings.length ? ''
        : 'No claimers for this period yet. Why not go ahead and capture some IPs?';
      markReady('ranks:' + period);
    });
  }

  function loadRecent() {
    return getJSON('/api/recent').then(function (res) {
      var list = document.getElementById('recent-claims');
      list.textContent = '';
      res.claims.forEach(function (claim) {
        var li = document.createElement('li');
        li.className = 'recent-claim';
        var ip = document.createElement('b');
        ip.className = 'ip';
        ip.textContent = claim.ip;
        var when = document.createElement('span');
        when.className = 'ago';
        when.dataset.claimedAt = String(claim.claimed_at);
        when.textContent = agoText(claim.claimed_at * 1000);
        li.append(ip, ' got captured ', when, ' by ', playerLink(claim.nick));
        list.appendChild(li);
      });
      markReady('recent');
    });
  }

  function buildTiles() {
    var box = document.getElementById('segments');
    for (var i = 0; i < 256; i++) {
      var tile = document.createElement('div');
      tile.className = 's s-empty';
      tile.id = 'b-' + i;
      ['s-cidr', 's-nick', 's-count'].forEach(function (cls) {
        var span = document.createElement('span');
        span.className = cls;
        tile.appendChild(span);
      });
      tile.querySelector('.s-cidr').textContent = i + '.0.0.0';
      box.appendChild(tile);
    }
  }

  function loadBlocks() {
    return getJSON('/api/blocks').then(function (res) {
      showLastUpdated(res.last_updated_at);
      var byBlock = {};
      res.blocks.forEach(function (b) { byBlock[b.block] = b; });
      for (var i = 0; i < 256; i++) {
        var tile = document.getElementById('b-' + i);
        var b = byBlock[i];
        if (!b) continue;
        tile.classList.remove('s-empty');
        tile.querySelector('.s-count').textContent = '(' + plural(b.claims, 'address', 'addresses') + ')';
        var nick = tile.querySelector('.s-nick');
        if (b.is_tied) {
          nick.textContent = '(tied)';
          tile.classList.add('s-tied');
        } else {
          nick.appendChild(playerLink(b.nick));
          tile.style.backgroundColor = 'hsl(' + hueOf(b.nick) + ', 90%, 88%)';
        }
      }
      markReady('blocks');
    });
  }

  // Player page.

  function loadUser() {
    var name = new URLSearchParams(location.search).get('name') || '';
    document.getElementById('user-name').textContent = name;
    return getJSON('/api/users?name=' + encodeURIComponent(name)).then(function (res) {
      showLastUpdated(res.last_updated_at);
      var list = document.getElementById('user-blocks');
      var total = 0;
      res.rankings.forEach(function (row) {
        total += row.claims;
        var li = document.createElement('li');
        li.className = 'standing';
        li.textContent = (row.is_tied ? 'Tied ' : '') + ordinal(row.rank) + ' in block ' + row.block + '.0.0.0/8 with '
          + plural(row.claims, 'address', 'addresses');
        list.appendChild(li);
      });
      document.getElementById('total-addresses').textContent = String(total);
      markReady('user');
    });
  }

  function guard(what, promise) { promise.catch(function (e) { fail(what, e); }); }

  if (document.body.dataset.page === 'home') {
    buildTiles();
    var select = document.getElementById('rank-period');
    select.addEventListener('change', function () { location.hash = select.value; });
    window.addEventListener('hashchange', function () { guard('ranks', loadRanks()); });
    guard('ip', loadIP());
    guard('recent', loadRecent());
    guard('ranks', loadRanks());
    guard('blocks', loadBlocks());
  } else if (document.body.dataset.page === 'user') {
    guard('user', loadUser());
  }
})();
