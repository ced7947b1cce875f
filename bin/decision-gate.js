#!/usr/bin/env node
// The `decision-gate` command: runs the compiled CLI (built by `npm install` through the `prepare` script).
await import("../dist/cli/bin.js");
