/**
 * The published declarations as a user's strict project sees them (skipLibCheck off): they
 * compile, show the API and not the internals (stripInternal), and type `code` per error class.
 * The fixture is compiled against dist/src/*.d.ts with this checkout's TypeScript.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const tsc = path.join(root, 'node_modules/typescript/bin/tsc');

const FIXTURE = `
import { adopt, Ring, UringZcError, UringZcSystemError, UringZcArgumentError, UringZcAbortError, UringZcStateError, type UringZcCode } from ${JSON.stringify(path.join(root, 'dist/src/index.js'))};
const zs = adopt(0);
void zs.send(Buffer.alloc(1), { signal: AbortSignal.timeout(10) });
const ring = new Ring();
void ring.inFlight;
// @ts-expect-error internal: what sends for a socket is not API
void zs.ring;
// @ts-expect-error internal
ring.cancelOp(null);
// @ts-expect-error internal
void ring.mem;
declare const e: unknown;
if (e instanceof UringZcArgumentError) { const c: 'ERR_URING_ZC_INVALID_ARG' = e.code; void c; }
if (e instanceof UringZcAbortError) { const c: 'ABORT_ERR' = e.code; const n: number = e.bytes; void c; void n; }
if (e instanceof UringZcSystemError) { const c: \`E\${string}\` = e.code; void c; }
if (e instanceof UringZcStateError) {
  // @ts-expect-error a state error's code is one of the four state codes
  const c: 'ERR_URING_ZC_INVALID_ARG' = e.code; void c;
}
if (e instanceof UringZcError) { const c: UringZcCode = e.code; void c; }
// @ts-expect-error not a code
const bad: UringZcCode = 'NOT_A_CODE'; void bad;
`;

test('the .d.ts compile in a strict project, without internals, with typed error codes', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'uzc-dts-'));
  try {
    writeFileSync(path.join(dir, 'a.ts'), FIXTURE);
    writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        strict: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', noEmit: true,
        skipLibCheck: false, types: ['node'], typeRoots: [path.join(root, 'node_modules/@types')],
      },
      files: ['a.ts'],
    }));
    const r = spawnSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8', timeout: 50_000 });
    assert.equal(r.status, 0, `tsc found errors:\n${r.stdout}${r.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
