// Preloaded (`node --import`) into the reference MCP server in the tests: its command line
// has no host option and it would listen on every interface. A listen on a bare port is
// turned into a listen on that port of 127.0.0.1 only.
import net from "node:net";

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (port, ...rest) {
  const numeric = typeof port === "number" || (typeof port === "string" && /^\d+$/.test(port));
  if (numeric && typeof rest[0] !== "string") {
    return listen.call(this, { port: Number(port), host: "127.0.0.1" }, ...rest);
  }
  return listen.call(this, port, ...rest);
};
