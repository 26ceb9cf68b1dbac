// The surface playground: every path was computed by descentlab's population runner and comes with
// the page (quantized, coded as zigzag varints of each step's change, deflated, base85); this script
// inflates a variant when it is first shown and draws the chosen setting of each ticked optimizer over
// the contour picture.
document.querySelectorAll(".playground").forEach(function (root) {
  if (root.dataset.ready) return;
  var data = JSON.parse(root.querySelector(".playground-data").textContent);
  var $ = function (selector) { return root.querySelector(selector); };
  var picker = $(".pg-view"), noise = $(".pg-noise"), time = $(".pg-time"), clock = $(".pg-clock");
  var play = $(".pg-play"), stepButton = $(".pg-step"), canvas = $(".pg-stage canvas"), image = new Image();
  var rows = $(".pg-rows"), call = $(".pg-call");
  var levels = data.levels, lossScale = data.loss[0], lossFloor = data.loss[1];
  var settings = {}, decoded = new Map(), variant = null, paths = null, timer = null, calling = null;

  Object.keys(data.views).forEach(function (key) {
    var option = document.createElement("option");
    option.value = key; option.textContent = data.views[key].title; picker.appendChild(option);
  });

  // base85 with git's alphabet (Python's base64.b85encode): 5 characters for 4 bytes, a short last group
  var digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~";
  var digit = new Uint8Array(128);
  for (var d = 0; d < 85; d++) digit[digits.charCodeAt(d)] = d;
  function base85(text) {
    var n = text.length, size = Math.floor(n / 5) * 4 + (n % 5 ? n % 5 - 1 : 0);
    var out = new Uint8Array(size + 3), o = 0;
    for (var i = 0; i < n; i += 5) {
      var value = 0;  // < 2^32 (a short group is padded with the largest digit, as Python decodes it)
      for (var j = i; j < i + 5; j++) value = value * 85 + (j < n ? digit[text.charCodeAt(j)] : 84);
      out[o++] = value >>> 24; out[o++] = (value >>> 16) & 255; out[o++] = (value >>> 8) & 255; out[o++] = value & 255;
    }
    return out.subarray(0, size);
  }

  function inflate(text) {
    var bytes = base85(text);
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Response(stream).arrayBuffer().then(function (buffer) { return new Uint8Array(buffer); });
  }

  // zigzag varints: each path's length, each path's end, then three streams (x, y, loss code), path
  // after path, each value coded as its path's first value, its first step, then its step's change
  function decode(v) {
    if (decoded.has(v)) return decoded.get(v);
    var promise = inflate(v.data).then(function (bytes) {
      var at = 0, lengths = [], ends = [], starts = [], total = 0, p;
      function next() {
        var z = 0, shift = 0, b;
        do { b = bytes[at++]; z += (b & 127) * Math.pow(2, shift); shift += 7; } while (b & 128);
        return (z % 2) ? -(z + 1) / 2 : z / 2;
      }
      for (p = 0; p < v.paths; p++) { lengths.push(next()); starts.push(total); total += lengths[p]; }
      for (p = 0; p < v.paths; p++) ends.push(next());
      var streams = [new Int32Array(total), new Int32Array(total), new Int32Array(total)];
      streams.forEach(function (out) {
        var i = 0;
        lengths.forEach(function (length) {
          var value = 0, velocity = 0;
          for (var j = 0; j < length; j++) {
            var z = next();
            if (j === 0) value = z; else { velocity += z; value += velocity; }
            out[i++] = value;
          }
        });
      });
      return {x: streams[0], y: streams[1], loss: streams[2], starts: starts, lengths: lengths, ends: ends};
    });
    decoded.set(v, promise);
    return promise;
  }

  function setting(name, optimizer) {
    if (!settings[name]) settings[name] = {shown: data.shown.indexOf(name) >= 0, lr: optimizer.initial[0],
                                           second: optimizer.initial[1]};
    return settings[name];
  }

  // the index of an optimizer's current path among the variant's paths
  function pathIndex(name) {
    var index = 0;
    for (var i = 0; i < variant.optimizers.length; i++) {
      var o = variant.optimizers[i], count = o.lrs.length * Math.max(o.values.length, 1);
      if (o.name === name) {
        var s = setting(name, o);
        return index + Math.min(s.second, Math.max(o.values.length - 1, 0)) * o.lrs.length
               + Math.min(s.lr, o.lrs.length - 1);
      }
      index += count;
    }
    return -1;
  }

  function pixel(view, qx, qy) {
    var a = view.axes;
    return [a[0] + qx / levels * a[2], a[1] + a[3] - qy / levels * a[3]];
  }

  function coordinates(view, qx, qy) {
    var w = view.window;
    return [w[0] + qx / levels * (w[1] - w[0]), w[2] + qy / levels * (w[3] - w[2])];
  }

  function inside(a, q) { return q[0] >= a[0] && q[0] <= a[0] + a[2] && q[1] >= a[1] && q[1] <= a[1] + a[3]; }

  // where a stopped path last crosses the plot's edge (axes a: left, top, width, height), or its
  // last point if that lies inside the plot
  function exit(a, start, last, head) {
    if (inside(a, head)) return head;
    var i = last;
    while (i > 0 && !inside(a, pixel(data.views[variant.view], paths.x[start + i - 1], paths.y[start + i - 1]))) i--;
    if (i === 0) return head;
    var p = pixel(data.views[variant.view], paths.x[start + i - 1], paths.y[start + i - 1]);
    var q = pixel(data.views[variant.view], paths.x[start + i], paths.y[start + i]), t = 1;
    [0, 1].forEach(function (d) {
      var low = a[d], high = a[d] + a[d + 2];
      if (q[d] < low) t = Math.min(t, (low - p[d]) / (q[d] - p[d]));
      if (q[d] > high) t = Math.min(t, (high - p[d]) / (q[d] - p[d]));
    });
    return [p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])];
  }

  function loss(code) { return lossFloor * Math.sinh(code / lossScale); }

  function draw() {
    if (!paths) return;
    var view = data.views[variant.view], k = +time.value, context = canvas.getContext("2d");
    context.clearRect(0, 0, canvas.width, canvas.height);
    if (image.complete && image.naturalWidth) context.drawImage(image, 0, 0);
    context.save();
    context.beginPath(); context.rect(view.axes[0], view.axes[1], view.axes[2], view.axes[3]); context.clip();
    variant.optimizers.forEach(function (o) {
      var s = setting(o.name, o), row = rows.querySelector('[data-name="' + o.name + '"]');
      var p = pathIndex(o.name), start = paths.starts[p], length = paths.lengths[p], end = paths.ends[p];
      var last = Math.min(k, length - 1), colour = data.colours[o.name];
      var state = row.querySelector(".pg-state");
      var lossText = "loss " + loss(paths.loss[start + last]).toPrecision(3) + " at step " + last;
      var stopped = end !== 0 && k >= length - 1;
      state.innerHTML = "";
      state.appendChild(document.createTextNode(lossText));
      if (stopped) {
        var bad = document.createElement("span");
        bad.className = "pg-bad";
        bad.textContent = end > 0 ? " · diverged at step " + end : " · left the plot at step " + (-end);
        state.appendChild(bad);
      }
      if (!s.shown) return;
      context.strokeStyle = colour; context.fillStyle = colour; context.lineWidth = 2;
      context.beginPath();
      for (var i = 0; i <= last; i++) {
        var q = pixel(view, paths.x[start + i], paths.y[start + i]);
        if (i === 0) context.moveTo(q[0], q[1]); else context.lineTo(q[0], q[1]);
      }
      context.stroke();
      var head = pixel(view, paths.x[start + last], paths.y[start + last]);
      context.beginPath();
      if (stopped) {  // a cross, and what happened, where the path diverged or left the plot
        var mark = exit(view.axes, start, last, head);
        context.lineWidth = 3;
        context.moveTo(mark[0] - 6, mark[1] - 6); context.lineTo(mark[0] + 6, mark[1] + 6);
        context.moveTo(mark[0] + 6, mark[1] - 6); context.lineTo(mark[0] - 6, mark[1] + 6);
        context.stroke();
        var a = view.axes, right = mark[0] > a[0] + a[2] / 2, low = mark[1] > a[1] + a[3] / 2;
        context.font = "bold 12px sans-serif";
        context.textAlign = right ? "right" : "left"; context.textBaseline = low ? "bottom" : "top";
        var text = (end > 0 ? "diverged at step " + end : "left the plot at step " + (-end));
        var tx = mark[0] + (right ? -9 : 9), ty = mark[1] + (low ? -7 : 7);
        context.lineWidth = 3; context.strokeStyle = "white"; context.strokeText(text, tx, ty);
        context.fillText(text, tx, ty);
      } else {
        context.arc(head[0], head[1], 4.5, 0, 2 * Math.PI); context.fill();
        context.strokeStyle = "black"; context.lineWidth = 1; context.stroke();
      }
    });
    context.restore();
    root.dataset.step = k;
    clock.textContent = "step " + k + " / " + variant.steps;
    if (calling) showCall(calling);
  }

  function showCall(name) {
    var o = variant.optimizers.find(function (o) { return o.name === name; }), s = setting(name, o);
    calling = name;
    call.hidden = false;
    call.textContent = data.calls[name].split("{lr}").join(o.lrs[s.lr])
      .split("{second}").join(o.values.length ? String(o.values[s.second]) : "")
      .split("{problem}").join("'" + variant.problem + "'")
      .split("{options}").join(JSON.stringify(variant.options).replace(/"/g, "'"))
      .split("{batch}").join(variant.batch === null ? "None" : String(variant.batch))
      .split("{steps}").join(String(variant.steps));
  }

  function label(o, s) {
    var text = "lr " + Number(o.lrs[s.lr]).toPrecision(3);
    if (o.values.length) text += (o.second === "beta1" ? " · β1 " : " · momentum ") + o.values[s.second];
    return text;
  }

  function slider(max, value, name, onInput) {
    var input = document.createElement("input");
    input.type = "range"; input.min = 0; input.max = max; input.value = value;
    input.setAttribute("aria-label", name);
    input.addEventListener("input", function () { onInput(+input.value); });
    return input;
  }

  function buildRows() {
    rows.innerHTML = "";
    variant.optimizers.forEach(function (o) {
      var s = setting(o.name, o), row = document.createElement("div");
      row.className = "pg-row" + (s.shown ? "" : " off"); row.dataset.name = o.name;
      var toggle = document.createElement("label"), box = document.createElement("input");
      box.type = "checkbox"; box.checked = s.shown; box.className = "pg-show";
      box.addEventListener("change", function () {
        s.shown = box.checked; row.className = "pg-row" + (s.shown ? "" : " off"); draw();
      });
      var swatch = document.createElement("i"); swatch.style.background = data.colours[o.name];
      toggle.appendChild(box); toggle.appendChild(swatch); toggle.appendChild(document.createTextNode(o.name));
      var sliders = document.createElement("div"), text = document.createElement("span");
      sliders.className = "pg-detail";
      text.textContent = label(o, s);
      sliders.appendChild(slider(o.lrs.length - 1, s.lr, o.name + " learning rate", function (i) {
        s.lr = i; text.textContent = label(o, s); draw();
      })).className = "pg-lr";
      if (o.values.length) {
        sliders.appendChild(slider(o.values.length - 1, s.second, o.name + " " + o.second, function (i) {
          s.second = i; text.textContent = label(o, s); draw();
        })).className = "pg-second";
      }
      sliders.appendChild(text);
      var link = document.createElement("a");
      link.href = "#"; link.textContent = "reproduce this path"; link.className = "pg-reproduce";
      link.addEventListener("click", function (event) { event.preventDefault(); showCall(o.name); });
      var state = document.createElement("div"); state.className = "pg-state";
      row.appendChild(toggle); row.appendChild(sliders); row.appendChild(link); row.appendChild(state);
      rows.appendChild(row);
    });
  }

  function choose() {
    stop();
    var wanted = noise.checked;
    variant = data.variants.find(function (v) { return v.view === picker.value && (v.noise > 0) === wanted; })
      || data.variants.find(function (v) { return v.view === picker.value; });
    noise.disabled = !data.variants.some(function (v) { return v.view === picker.value && v.noise > 0; });
    var view = data.views[variant.view];
    image.onload = draw;
    image.src = "data:image/png;base64," + view.png;
    canvas.width = view.size[0]; canvas.height = view.size[1];
    time.max = variant.steps;
    if (+time.value > variant.steps) time.value = variant.steps;
    buildRows();
    paths = null;
    root.dataset.ready = "";
    var chosen = variant;
    return decode(variant).then(function (decodedPaths) {
      if (chosen !== variant) return;
      paths = decodedPaths; draw(); root.dataset.ready = "1";
    });
  }

  function stop() { clearInterval(timer); timer = null; play.textContent = "play"; }
  function advance() {
    var k = +time.value + 1;
    time.value = Math.min(k, variant.steps); draw();
    if (k >= variant.steps) stop();
  }
  play.addEventListener("click", function () {
    if (timer) { stop(); return; }
    if (+time.value >= variant.steps) time.value = 0;
    play.textContent = "pause";
    timer = setInterval(advance, Math.max(10, 5000 / variant.steps));
  });
  stepButton.addEventListener("click", function () { stop(); advance(); });
  time.addEventListener("input", function () { stop(); draw(); });
  picker.addEventListener("change", choose);
  noise.addEventListener("change", choose);

  // for tests and the curious: the current path of an optimizer, in the surface's coordinates
  root.playground = {
    ready: function () { return decode(variant).then(function () { return true; }); },
    path: function (name) {
      var p = pathIndex(name), start = paths.starts[p], view = data.views[variant.view], out = [];
      for (var i = 0; i < paths.lengths[p]; i++) out.push(coordinates(view, paths.x[start + i], paths.y[start + i]));
      return {points: out, end: paths.ends[p]};
    },
    setting: function (name) { return settings[name]; },
    mark: function (name) {  // where a stopped path's cross is drawn, in the canvas's pixels
      var p = pathIndex(name), start = paths.starts[p], last = paths.lengths[p] - 1, view = data.views[variant.view];
      return exit(view.axes, start, last, pixel(view, paths.x[start + last], paths.y[start + last]));
    },
  };
  choose();
  time.value = time.max;  // whole paths first; play starts over from step 0
});
