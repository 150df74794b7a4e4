// A stand-in for the original ipv4.games front end, written for IPQuest's compatibility tests
// (not the original code). Like the original it asks only two things of the server:
//
//   /ip     the visitor's address as text; any other status than 200 means "not IPv4"
//   /score  {"now":[sec,nsec],"score":{"NICK":[[block,count],...],...}}
//
// and works out everything else in the browser: a block is controlled by the one player with
// the most addresses in it (a tie controls nothing); top players are ordered by blocks
// controlled, then total addresses (then name, so the order is deterministic), and only players
// with at least one block or at least 10 addresses are listed.
//
// Progress is published on <body data-ready="..."> so a test can wait without sleeping.
'use strict';
(function () {
  function markReady(part) {
    var parts = (document.body.dataset.ready || '').split(' ').filter(Boolean);
    if (parts.indexOf(part) < 0) parts.push(part);
    document.body.dataset.ready = parts.join(' ');
  }

  function fail(what, error) {
    var box = document.getElementById('load-error');
    box.hidden = false;
    box.textContent = 'Could not load ' + what + ': ' + error.message;
    document.body.dataset.error = what;
  }

  function addresses(n) { return n + (n === 1 ? ' address' : ' addresses'); }

  function ordinal(n) {
    var tens = n % 100;
    if (tens >= 11 && tens <= 13) return n + 'th';
    return n + (['th', 'st', 'nd', 'rd'][n % 10] || 'th');
  }

  function byName(a, b) { return a < b ? -1 : a > b ? 1 : 0; }

  function userLink(name) {
    var a = document.createElement('a');
    a.className = 'name';
    a.href = '/user.html?name=' + encodeURIComponent(name);
    a.textContent = name;
    return a;
  }

  // A colour per name (djb2 over UTF-16 code units).
  function colourOf(name) {
    var h = 5381;
    for (var i = 0; i < name.length; i++) h = (Math.imul(h, 33) + name.charCodeAt(i)) >>> 0;
    return 'hsl(' + (h % 360) + ', 100%, 85%)';
  }

  function loadScore() {
    return fetch('/score').then(function (res) {
      if (res.status !== 200) throw new Error('/score answered ' + res.status);
      return res.json();
    }).then(function (res) {
      var updated = res.now[0];
      var el = document.getElementById('last-updated');
      el.dataset.now = String(updated);
      el.textContent = '(Last updated ' + Math.max(0, Date.now() / 1000 - updated).toFixed(1) + ' seconds ago)';
      return res.score;
    });
  }

  // Per block: the players and counts, the top count and the controlling player (or null).
  function analyse(score) {
    var blocks = [];
    for (var i = 0; i < 256; i++) blocks.push({ players: [], top: 0, leader: null, tied: false });
    var players = Object.keys(score).map(function (name) {
      var total = 0;
      score[name].forEach(function (pair) {
        var b = blocks[pair[0]];
        b.players.push({ name: name, count: pair[1] });
        total += pair[1];
      });
      return { name: name, total: total, owned: [] };
    });
    var byPlayer = {};
    players.forEach(function (p) { byPlayer[p.name] = p; });
    blocks.forEach(function (b, i) {
      b.players.forEach(function (p) { if (p.count > b.top) b.top = p.count; });
      var best = b.players.filter(function (p) { return p.count === b.top; });
      if (best.length === 1) {
        b.leader = best[0].name;
        byPlayer[b.leader].owned.push(i);
      } else if (best.length > 1) {
        b.tied = true;
      }
    });
    return { blocks: blocks, players: players };
  }

  function renderHome(score) {
    var a = analyse(score);
    var top = a.players.filter(function (p) { return p.owned.length > 0 || p.total >= 10; });
    top.sort(function (x, y) { return (y.owned.length - x.owned.length) || (y.total - x.total) || byName(x.name, y.name); });
    var list = document.getElementById('top-players');
    list.textContent = '';
    top.forEach(function (p) {
      var li = document.createElement('li');
      li.append(userLink(p.name), ' with ' + addresses(p.total));
      if (p.owned.length) {
        li.append(', and ' + p.owned.length + (p.owned.length === 1 ? ' block' : ' blocks') + ' controlled ... '
                  + p.owned.join(', '));
      }
      list.appendChild(li);
    });
    var box = document.getElementById('segments');
    box.textContent = '';
    a.blocks.forEach(function (b, i) {
      var tile = document.createElement('div');
      tile.className = 'segment';
      tile.id = 'b-' + i;
      var cidr = document.createElement('span');
      cidr.className = 'segment-cidr';
      cidr.textContent = i + '.0.0.0/8';
      var nick = document.createElement('span');
      nick.className = 'segment-nick';
      var count = document.createElement('span');
      count.className = 'segment-count';
      if (b.leader !== null) {
        nick.appendChild(userLink(b.leader));
        count.textContent = '(' + addresses(b.top) + ')';
        tile.style.backgroundColor = colourOf(b.leader);
      } else if (b.tied) {
        nick.textContent = '(tied)';
        count.textContent = '(' + addresses(b.top) + ')';
        tile.classList.add('segment-tied');
      } else {
        tile.classList.add('segment-empty');
      }
      tile.append(cidr, nick, count);
      box.appendChild(tile);
    });
    markReady('score');
  }

  function renderUser(score) {
    var name = new URLSearchParams(location.search).get('name') || '';
    var mine = (score[name] || []).slice().sort(function (x, y) { return x[0] - y[0]; });
    var list = document.getElementById('standings');
    var total = 0;
    mine.forEach(function (pair) {
      var block = pair[0], count = pair[1];
      var above = 0, same = 0;
      Object.keys(score).forEach(function (other) {
        score[other].forEach(function (p) {
          if (p[0] !== block) return;
          if (p[1] > count) above++;
          else if (p[1] === count) same++; // counts this player too
        });
      });
      var li = document.createElement('li');
      li.textContent = (same > 1 ? 'Tied ' : '') + ordinal(above + 1) + ' in block ' + block + '.0.0.0/8 with ' + addresses(count);
      list.appendChild(li);
      total += count;
    });
    document.getElementById('total-addresses').textContent = String(total);
    markReady('user');
  }

  var page = document.body.dataset.page;
  if (page === 'home') {
    fetch('/ip').then(function (res) {
      if (res.status !== 200) {
        document.getElementById('claim-box').hidden = true;
        document.getElementById('ipv6-box').hidden = false;
        markReady('ip');
        return;
      }
      return res.text().then(function (text) {
        document.getElementById('my-ip').textContent = text.trim();
        markReady('ip');
      });
    }).catch(function (e) { fail('ip', e); });
    loadScore().then(renderHome).catch(function (e) { fail('score', e); });
  } else if (page === 'user') {
    document.getElementById('my-name').textContent = new URLSearchParams(location.search).get('name') || '';
    loadScore().then(renderUser).catch(function (e) { fail('score', e); });
  }
})();
