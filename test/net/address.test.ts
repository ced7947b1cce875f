import { describe, expect, it } from "vitest";
import {
  isLoopbackAddress,
  isLoopbackBind,
  networkBlockList,
  parseBind,
  parseHostHeader,
  parseIpNetwork,
  parseWebOrigin,
} from "../../src/net/address.js";

describe("network addresses", () => {
  it("parses IP-literal bind addresses only", () => {
    expect(parseBind("127.0.0.1:4000")).toEqual({ host: "127.0.0.1", port: 4000, family: 4 });
    expect(parseBind("[::1]:4000")).toEqual({ host: "::1", port: 4000, family: 6 });
    for (const bad of ["localhost:4000", "127.0.0.1", "::1:4000", "127.0.0.1:65536", "[127.0.0.1]:80", ""]) {
      expect(parseBind(bad)).toBeNull();
    }
  });

  it("knows loopback binds and addresses, including IPv4-mapped loopback", () => {
    expect(isLoopbackBind("127.0.0.1:4000")).toBe(true);
    expect(isLoopbackBind("[::1]:4000")).toBe(true);
    expect(isLoopbackBind("0.0.0.0:8080")).toBe(false);
    expect(isLoopbackBind("[::]:8080")).toBe(false);
    expect(isLoopbackAddress("::ffff:127.0.0.1")).toBe(true);
    expect(isLoopbackAddress("10.0.0.1")).toBe(false);
  });

  it("parses IP networks: CIDR blocks and single hosts", () => {
    expect(parseIpNetwork("10.0.0.0/8")).toEqual({ address: "10.0.0.0", prefix: 8, family: "ipv4" });
    expect(parseIpNetwork("192.0.2.7")).toEqual({ address: "192.0.2.7", prefix: 32, family: "ipv4" });
    expect(parseIpNetwork("2001:db8::/32")).toEqual({ address: "2001:db8::", prefix: 32, family: "ipv6" });
    expect(parseIpNetwork("::1")).toEqual({ address: "::1", prefix: 128, family: "ipv6" });
    for (const bad of ["10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/8/8", "10.0.0.0/+8", "gate.example.com", ""]) {
      expect(parseIpNetwork(bad)).toBeNull();
    }
  });

  it("builds a block list from networks, refusing an entry that is not one", () => {
    const list = networkBlockList(["10.0.0.0/8", "2001:db8::1"]);
    expect(list.check("10.200.0.1", "ipv4")).toBe(true);
    expect(list.check("11.0.0.1", "ipv4")).toBe(false);
    expect(list.check("2001:db8::1", "ipv6")).toBe(true);
    expect(list.check("2001:db8::2", "ipv6")).toBe(false);
    expect(() => networkBlockList(["10.0.0.0/33"])).toThrow("invalid IP network: 10.0.0.0/33");
  });

  it("reads Host headers as browsers do and web origins only in their bare form", () => {
    expect(parseHostHeader("Gate.Example.com.:8443")).toEqual({
      host: "gate.example.com.:8443",
      hostname: "gate.example.com",
    });
    expect(parseHostHeader("127.1")).toEqual({ host: "127.0.0.1", hostname: "127.0.0.1" });
    expect(parseHostHeader("[::1]:80")).toEqual({ host: "[::1]", hostname: "[::1]" });
    for (const bad of ["gate example", "user@gate", "gate/path", ""]) expect(parseHostHeader(bad)).toBeNull();

    expect(parseWebOrigin("https://gate.example.com")).toBe("https://gate.example.com");
    expect(parseWebOrigin("http://127.0.0.1:4000/")).toBe("http://127.0.0.1:4000");
    for (const bad of ["null", "file:///etc", "https://gate.example.com/app", "https://u@gate.example.com"]) {
      expect(parseWebOrigin(bad)).toBeNull();
    }
  });
});
