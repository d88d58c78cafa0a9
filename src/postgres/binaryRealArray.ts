// PostgreSQL's binary wire form of a one-dimensional real[] (what
// array_recv reads): node-postgres sends a Buffer parameter in binary format,
// so a batch of embeddings reaches the server as 4-byte floats instead of
// text the server would parse number by number (float4in: most of a
// text-form vector write's cost). The values round to float32 as
// Math.fround does, which is exact for an engine's float32 embeddings.

/** The OID of real (float4), named in the array's header. */
const FLOAT4_OID = 700;

/** The binary form of the `real[]` holding every vector's values, one vector after another (lower bound 1). */
export function binaryRealArray(vectors: readonly (readonly number[])[]): Buffer {
  const total = vectors.reduce((n, v) => n + v.length, 0);
  const buf = Buffer.allocUnsafe(20 + total * 8);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  view.setInt32(0, 1); // dimensions
  view.setInt32(4, 0); // flags: no NULL element
  view.setUint32(8, FLOAT4_OID);
  view.setInt32(12, total); // length of dimension 1
  view.setInt32(16, 1); // its lower bound
  let at = 20;
  for (const v of vectors) {
    for (const x of v) {
      view.setInt32(at, 4);
      view.setFloat32(at + 4, x);
      at += 8;
    }
  }
  return buf;
}
