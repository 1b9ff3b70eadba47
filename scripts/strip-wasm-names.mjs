#!/usr/bin/env node
// Removes the custom "name" section (function names for stack traces) from a wasm file, byte
// for byte, without re-encoding anything else. worker-build always keeps it (`wasm-opt
// --debuginfo`); in a release build it is ~67 KB of the gzipped upload. A panic still logs its
// message and source location through console_error_panic_hook.
import { readFileSync, writeFileSync } from "node:fs";

const file = process.argv[2];
const wasm = readFileSync(file);
if (wasm.readUInt32BE(0) !== 0x0061736d) throw new Error(`${file} is not a wasm module`);

function leb(buf, at) {
  let value = 0, shift = 0, byte;
  do {
    byte = buf[at++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return [value, at];
}

const kept = [wasm.subarray(0, 8)];
let at = 8, removed = 0;
while (at < wasm.length) {
  const start = at;
  const id = wasm[at++];
  const [size, body] = leb(wasm, at);
  const end = body + size;
  let drop = false;
  if (id === 0) {
    const [len, nameAt] = leb(wasm, body);
    drop = wasm.subarray(nameAt, nameAt + len).toString() === "name";
  }
  if (drop) removed += end - start;
  else kept.push(wasm.subarray(start, end));
  at = end;
}
writeFileSync(file, Buffer.concat(kept));
console.error(`strip-wasm-names: removed ${removed} bytes from ${file}`);
