/** A ring: 425 Hz, 1 s on / 3 s off, as a WAV for an <audio> element on the ringer device. */
export function ringTone(): string {
  const rate = 8000;
  const samples = new Int16Array(rate * 4);
  for (let i = 0; i < rate; i++) samples[i] = Math.sin((2 * Math.PI * 425 * i) / rate) * 8000;
  const header = new DataView(new ArrayBuffer(44));
  const text = (at: number, s: string) => [...s].forEach((c, i) => header.setUint8(at + i, c.charCodeAt(0)));
  text(0, "RIFF");
  header.setUint32(4, 36 + samples.byteLength, true);
  text(8, "WAVE");
  text(12, "fmt ");
  header.setUint32(16, 16, true);
  header.setUint16(20, 1, true);
  header.setUint16(22, 1, true);
  header.setUint32(24, rate, true);
  header.setUint32(28, rate * 2, true);
  header.setUint16(32, 2, true);
  header.setUint16(34, 16, true);
  text(36, "data");
  header.setUint32(40, samples.byteLength, true);
  return URL.createObjectURL(new Blob([header, samples], { type: "audio/wav" }));
}
