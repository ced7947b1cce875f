import { describe, expect, it } from "vitest";
import { LruMap } from "../../src/core/lru-map.js";

describe("LruMap", () => {
  it("never holds more than its capacity, evicting the least recently used entry", () => {
    const map = new LruMap<string, number>(3);
    for (let i = 0; i < 100; i++) {
      map.set(`k${i}`, i);
      expect(map.size).toBeLessThanOrEqual(3);
    }
    expect([map.get("k96"), map.get("k97"), map.get("k98"), map.get("k99")]).toEqual([undefined, 97, 98, 99]);
  });

  it("counts a read as a use", () => {
    const map = new LruMap<string, number>(2);
    map.set("a", 1);
    map.set("b", 2);
    expect(map.get("a")).toBe(1);
    map.set("c", 3);
    expect([map.get("a"), map.get("b"), map.get("c")]).toEqual([1, undefined, 3]);
  });

  it("replaces an existing key without evicting another", () => {
    const map = new LruMap<string, number>(2);
    map.set("a", 1);
    map.set("b", 2);
    map.set("a", 10);
    expect([map.size, map.get("a"), map.get("b")]).toEqual([2, 10, 2]);
  });

  it("forgets a deleted key and frees its place", () => {
    const map = new LruMap<string, number>(2);
    map.set("a", 1);
    map.set("b", 2);
    map.delete("a");
    map.set("c", 3);
    expect([map.size, map.get("a"), map.get("b"), map.get("c")]).toEqual([2, undefined, 2, 3]);
  });

  it("refuses a capacity below one", () => {
    expect(() => new LruMap(0)).toThrow(RangeError);
    expect(() => new LruMap(1.5)).toThrow(RangeError);
  });
});
