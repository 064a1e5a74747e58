// Storyboard previews: the WebVTT the processing writes (cues whose text is
// "sprite.jpg#xywh=x,y,w,h"), shown above the scrub bar while the viewer drags or hovers.

export async function loadStoryboard(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`storyboard: HTTP ${response.status}`);
  return parseStoryboard(await response.text(), url);
}

function seconds(stamp) {
  const parts = stamp.trim().split(":").map(Number);
  return parts.reduce((total, part) => total * 60 + part, 0);
}

export function parseStoryboard(text, baseUrl) {
  const cues = [];
  const blocks = text.replace(/\r/g, "").split(/\n\n+/);
  for (const block of blocks) {
    const lines = block.split("\n").filter(Boolean);
    const timing = lines.findIndex((line) => line.includes("-->"));
    if (timing < 0 || !lines[timing + 1]) continue;
    const [start, end] = lines[timing].split("-->").map((s) => seconds(s.split(" ").filter(Boolean)[0] || s));
    const [file, fragment = ""] = lines[timing + 1].trim().split("#");
    const xywh = /xywh=(\d+),(\d+),(\d+),(\d+)/.exec(fragment);
    if (!xywh) continue;
    const [x, y, w, h] = xywh.slice(1).map(Number);
    cues.push({ start, end, url: new URL(file, baseUrl).href, x, y, w, h });
  }
  return cues;
}

export function cueAt(cues, time) {
  let lo = 0;
  let hi = cues.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (time < cues[mid].start) hi = mid - 1;
    else if (time >= cues[mid].end) lo = mid + 1;
    else return cues[mid];
  }
  return cues.length ? cues[Math.max(0, Math.min(cues.length - 1, lo))] : null;
}
