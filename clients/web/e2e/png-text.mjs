// PNG tEXt chunks, written and read without an image library: docs/console.png carries the
// fingerprint of the sources it was taken from (console-fingerprint.mjs), so a test can tell an
// outdated screenshot from a current one without comparing pixels (the picture holds clock
// times and so differs between any two takes).
import * as zlib from "node:zlib";

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

// CRC-32 (ISO 3309, as PNG uses it): node:zlib's where it has one (Node >= 20.15), else a table.
let table;
function tableCrc32(bytes) {
  table ??= Array.from({ length: 256 }, (_, n) => {
    for (let k = 0; k < 8; k++) n = n & 1 ? 0xedb88320 ^ (n >>> 1) : n >>> 1;
    return n >>> 0;
  });
  let c = 0xffffffff;
  for (const b of bytes) c = table[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
export const crc32 = (bytes) => (zlib.crc32 ? zlib.crc32(bytes) : tableCrc32(bytes)) >>> 0;

/**
 * The chunks of a PNG as { type, data, start, end } (start/end: byte offsets of the whole
 * chunk), plus the IHDR's width and height. Throws on anything that is not a well-formed PNG:
 * a wrong signature, a truncated chunk, a CRC that does not match, no IHDR first or no IEND last.
 */
export function parsePng(png) {
  if (png.length < 8 || !png.subarray(0, 8).equals(SIGNATURE)) throw new Error("not a PNG (wrong signature)");
  const chunks = [];
  let at = 8;
  while (at < png.length) {
    if (at + 12 > png.length) throw new Error(`PNG truncated in a chunk header at byte ${at}`);
    const length = png.readUInt32BE(at);
    const end = at + 12 + length;
    if (end > png.length) throw new Error(`PNG truncated in a chunk at byte ${at}`);
    const type = png.toString("latin1", at + 4, at + 8);
    const crc = png.readUInt32BE(end - 4);
    if (crc32(png.subarray(at + 4, end - 4)) != crc) throw new Error(`PNG chunk ${type} at byte ${at} has a wrong CRC`);
    chunks.push({ type, data: png.subarray(at + 8, end - 4), start: at, end });
    at = end;
    if (type == "IEND") break;
  }
  if (chunks[0]?.type != "IHDR") throw new Error("PNG does not start with IHDR");
  if (chunks.at(-1).type != "IEND" || at != png.length) throw new Error("PNG does not end with IEND");
  return { width: chunks[0].data.readUInt32BE(0), height: chunks[0].data.readUInt32BE(4), chunks };
}

/** The tEXt chunks of a PNG as { keyword: text } (Latin-1, as PNG defines them). */
export function textChunks(png) {
  const text = {};
  for (const { type, data } of parsePng(png).chunks) {
    if (type != "tEXt") continue;
    const nul = data.indexOf(0);
    if (nul > 0) text[data.toString("latin1", 0, nul)] = data.toString("latin1", nul + 1);
  }
  return text;
}

/**
 * The PNG with a tEXt chunk `keyword` = `text` just before IEND, replacing any chunk with that
 * keyword it had (so retaking or re-stamping a picture leaves one).
 */
export function withTextChunk(png, keyword, text) {
  if (!/^[\x20-\x7e]{1,79}$/.test(keyword) || keyword != keyword.trim()) throw new Error(`bad tEXt keyword ${JSON.stringify(keyword)}`);
  if (!/^[\x20-\x7e\n]*$/.test(text)) throw new Error("tEXt text must be printable ASCII");
  const { chunks } = parsePng(png);
  const data = Buffer.from(`${keyword}\0${text}`, "latin1");
  const chunk = Buffer.alloc(12 + data.length);
  chunk.writeUInt32BE(data.length, 0);
  chunk.write("tEXt", 4, "latin1");
  data.copy(chunk, 8);
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 8 + data.length)), 8 + data.length);
  const kept = chunks.filter((c) => !(c.type == "tEXt" && c.data.indexOf(0) == keyword.length && c.data.toString("latin1", 0, keyword.length) == keyword));
  const parts = [SIGNATURE];
  for (const c of kept) {
    if (c.type == "IEND") parts.push(chunk);
    parts.push(png.subarray(c.start, c.end));
  }
  return Buffer.concat(parts);
}
