//! Call recording: a stereo 8 kHz 16-bit PCM WAV, caller on the left, callee on the right.
//!
//! Both channels are placed on one wall-clock timeline that starts when the recording starts:
//! a channel's first packet is anchored where it arrived, later packets go where their RTP
//! timestamp says relative to that anchor, and gaps stay silent. So a late answer, packet loss
//! or a hold never shifts one party against the other.
//!
//! Samples land in a preallocated ring window first, because the two directions arrive
//! independently and slightly out of order; `flush` (about once a second) moves everything older
//! than a jitter margin into the file and rewrites the WAV header, so a crash loses at most about
//! a second and leaves a playable file ([`repair`] fixes what is left after a `kill -9`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hound::{SampleFormat, WavSpec, WavWriter};

pub const SAMPLE_RATE: u32 = 8000;
const CHANNELS: u16 = 2;
/// Ring window, in frames (~2 s): covers one flush interval plus the jitter margin.
const WINDOW_FRAMES: usize = 1 << 14;
/// How far behind the wall clock `flush` stops, so late packets still find their place.
const JITTER_MARGIN_FRAMES: u64 = SAMPLE_RATE as u64 * 160 / 1000;
/// An RTP timestamp this far from the wall clock is a new stream, not a continuation.
const REANCHOR_FRAMES: i64 = 3 * SAMPLE_RATE as i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Left,
    Right,
}

impl Channel {
    fn index(self) -> usize {
        match self {
            Channel::Left => 0,
            Channel::Right => 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordingInfo {
    pub duration_ms: u64,
    pub bytes: u64,
    pub channels: u16,
}

/// Where a channel's RTP clock meets the recording's timeline.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    frame: i64,
    timestamp: u32,
}

pub struct Recorder {
    writer: WavWriter<BufWriter<File>>,
    path: PathBuf,
    start: Instant,
    /// Frames not yet written; frame `f` lives at `window[f % WINDOW_FRAMES]`.
    window: Box<[[i16; 2]]>,
    /// Frames handed to the writer so far; the window holds `written..written + WINDOW_FRAMES`.
    written: u64,
    /// One past the last frame any packet reached.
    end: u64,
    anchors: [Option<Anchor>; 2],
    /// One past the last frame each channel reached: a new anchor never goes before it, so a
    /// new stream (transfer) does not overwrite the end of the previous one.
    channel_end: [i64; 2],
    late_samples: u64,
    /// A write forced by `push` failed; reported by the next `flush`.
    deferred_error: Option<io::Error>,
}

impl Recorder {
    /// Starts a recording now, creating parent directories as needed.
    pub fn create(path: &Path) -> io::Result<Recorder> {
        Recorder::create_at(path, Instant::now())
    }

    /// Starts a recording whose timeline begins at `start`.
    pub fn create_at(path: &Path, start: Instant) -> io::Result<Recorder> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let spec = WavSpec {
            channels: CHANNELS,
            sample_rate: SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: SampleFormat::Int,
        };
        let writer = WavWriter::create(path, spec).map_err(to_io)?;
        Ok(Recorder {
            writer,
            path: path.to_path_buf(),
            start,
            window: vec![[0i16; 2]; WINDOW_FRAMES].into_boxed_slice(),
            written: 0,
            end: 0,
            anchors: [None; 2],
            channel_end: [0; 2],
            late_samples: 0,
            deferred_error: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Samples that arrived after their place had already been written (dropped).
    pub fn late_samples(&self) -> u64 {
        self.late_samples
    }

    /// Forgets a channel's anchor: the next packet starts a new stream (new SSRC, new party
    /// after a transfer) and is placed where it arrives.
    pub fn reanchor(&mut self, channel: Channel) {
        self.anchors[channel.index()] = None;
    }

    /// Places one packet's samples on the channel. Allocates nothing.
    pub fn push(&mut self, channel: Channel, rtp_timestamp: u32, samples: &[i16], now: Instant) {
        if samples.is_empty() {
            return;
        }
        let c = channel.index();
        let wall = self.wall_frame(now) as i64;
        let placed = self.anchors[c].and_then(|a| {
            let position = a.frame + rtp_timestamp.wrapping_sub(a.timestamp) as i32 as i64;
            ((position - wall).abs() <= REANCHOR_FRAMES).then_some(position)
        });
        let mut position = placed.unwrap_or_else(|| {
            let frame = wall.max(self.channel_end[c]);
            self.anchors[c] = Some(Anchor {
                frame,
                timestamp: rtp_timestamp,
            });
            frame
        });
        self.channel_end[c] = self.channel_end[c].max(position + samples.len() as i64);

        let mut samples = samples;
        let written = self.written as i64;
        if position < written {
            let skip = (written - position) as usize;
            if skip >= samples.len() {
                self.late_samples += samples.len() as u64;
                return;
            }
            self.late_samples += skip as u64;
            samples = &samples[skip..];
            position = written;
        }
        let first = position as u64;
        let last = first + samples.len() as u64;
        if last > self.written + WINDOW_FRAMES as u64 {
            // Flush is overdue: make room by writing the oldest frames now.
            if let Err(e) = self.write_out(last - WINDOW_FRAMES as u64) {
                self.deferred_error.get_or_insert(e);
            }
        }
        // At most two contiguous runs: up to the ring's end, then from its start.
        let offset = (first % WINDOW_FRAMES as u64) as usize;
        let (head, tail) = samples.split_at(samples.len().min(WINDOW_FRAMES - offset));
        for (frame, sample) in self.window[offset..].iter_mut().zip(head) {
            frame[c] = *sample;
        }
        for (frame, sample) in self.window.iter_mut().zip(tail) {
            frame[c] = *sample;
        }
        self.end = self.end.max(last);
    }

    /// Writes everything older than the jitter margin (silence included: the file follows the
    /// wall clock) and rewrites the header so the file on disk is playable as it stands.
    pub fn flush(&mut self, now: Instant) -> io::Result<()> {
        if let Some(e) = self.deferred_error.take() {
            return Err(e);
        }
        let cutoff = self.wall_frame(now).saturating_sub(JITTER_MARGIN_FRAMES);
        if cutoff > self.written {
            self.write_out(cutoff)?;
        }
        self.writer.flush().map_err(to_io)
    }

    /// Writes what is left up to the last received sample and closes the file.
    pub fn finish(mut self) -> io::Result<RecordingInfo> {
        if let Some(e) = self.deferred_error.take() {
            return Err(e);
        }
        let end = self.end.max(self.written);
        self.write_out(end)?;
        let frames = self.written;
        self.writer.finalize().map_err(to_io)?;
        Ok(RecordingInfo {
            duration_ms: frames * 1000 / SAMPLE_RATE as u64,
            bytes: fs::metadata(&self.path)?.len(),
            channels: CHANNELS,
        })
    }

    fn wall_frame(&self, now: Instant) -> u64 {
        samples_in(now.saturating_duration_since(self.start))
    }

    /// Moves frames `written..upto` from the window to the writer, clearing their slots.
    /// `written` advances even on error so the window never aliases.
    fn write_out(&mut self, upto: u64) -> io::Result<()> {
        let mut result = Ok(());
        while self.written < upto {
            let offset = (self.written % WINDOW_FRAMES as u64) as usize;
            let run = ((upto - self.written) as usize).min(WINDOW_FRAMES - offset);
            let mut samples = self.writer.get_i16_writer((run * 2) as u32);
            for frame in &mut self.window[offset..offset + run] {
                samples.write_sample(frame[0]);
                samples.write_sample(frame[1]);
                *frame = [0, 0];
            }
            if let Err(e) = samples.flush() {
                result = result.and(Err(to_io(e)));
            }
            self.written += run as u64;
        }
        result
    }
}

/// Number of 8 kHz sample periods in `d` (cheap: no 128-bit division on the packet path).
pub(crate) fn samples_in(d: Duration) -> u64 {
    d.as_secs() * SAMPLE_RATE as u64 + (d.subsec_nanos() / (1_000_000_000 / SAMPLE_RATE)) as u64
}

fn to_io(e: hound::Error) -> io::Error {
    match e {
        hound::Error::IoError(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

/// Fixes a WAV left behind by a crash: sets the RIFF and data chunk sizes to what the file
/// really holds, cut to whole frames, so ordinary tools (sox, hound) read all of it.
pub fn repair(path: &Path) -> io::Result<RecordingInfo> {
    let invalid = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {what}", path.display()),
        )
    };
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let file_len = file.metadata()?.len();
    let mut riff = [0u8; 12];
    file.read_exact(&mut riff)?;
    if &riff[0..4] != b"RIFF" || &riff[8..12] != b"WAVE" {
        return Err(invalid("not a RIFF/WAVE file"));
    }

    let mut format: Option<(u16, u32, u16)> = None; // channels, rate, block align
    let mut position = 12u64;
    let data_start = loop {
        if position + 8 > file_len {
            return Err(invalid("no data chunk"));
        }
        file.seek(SeekFrom::Start(position))?;
        let mut chunk = [0u8; 8];
        file.read_exact(&mut chunk)?;
        let size = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]) as u64;
        match &chunk[0..4] {
            b"fmt " => {
                let mut fmt = [0u8; 16];
                file.read_exact(&mut fmt)?;
                format = Some((
                    u16::from_le_bytes([fmt[2], fmt[3]]),
                    u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]),
                    u16::from_le_bytes([fmt[12], fmt[13]]),
                ));
            }
            b"data" => break position + 8,
            _ => {}
        }
        position += 8 + size + (size & 1);
    };
    let (channels, rate, block_align) = format.ok_or_else(|| invalid("no fmt chunk"))?;
    if rate == 0 || block_align == 0 {
        return Err(invalid("bad fmt chunk"));
    }

    let block = block_align as u64;
    let max_data = u32::MAX as u64 - data_start;
    let data_len = ((file_len - data_start).min(max_data)) / block * block;
    file.set_len(data_start + data_len)?;
    file.seek(SeekFrom::Start(4))?;
    file.write_all(&((data_start + data_len - 8) as u32).to_le_bytes())?;
    file.seek(SeekFrom::Start(data_start - 4))?;
    file.write_all(&(data_len as u32).to_le_bytes())?;
    file.sync_all()?;

    Ok(RecordingInfo {
        duration_ms: data_len / block * 1000 / rate as u64,
        bytes: data_start + data_len,
        channels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir()
            .join(format!("kolokol-media-{}-{name}", std::process::id()))
            .join("rec.wav")
    }

    fn read_frames(path: &Path) -> Vec<[i16; 2]> {
        let mut reader = hound::WavReader::open(path).unwrap();
        let spec = reader.spec();
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (2, 8000, 16)
        );
        let samples: Vec<i16> = reader.samples::<i16>().map(|s| s.unwrap()).collect();
        samples.chunks(2).map(|c| [c[0], c[1]]).collect()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn channels_stay_aligned_across_gaps_and_late_start() {
        let path = temp_path("aligned");
        let t0 = Instant::now();
        let mut rec = Recorder::create_at(&path, t0).unwrap();
        // Events in arrival order: (at, channel, timestamp, value).
        let mut events = Vec::new();
        for k in 0..50u32 {
            if !(20..30).contains(&k) {
                events.push((ms(20 * k as u64), Channel::Left, 1000 + k * 160, 1000i16));
            }
        }
        for k in 0..25u32 {
            let base = u32::MAX - 1000; // the RTP clock wraps during the call
            let ts = base.wrapping_add(k * 160);
            events.push((ms(500 + 20 * k as u64), Channel::Right, ts, -2000i16));
        }
        events.sort_by_key(|e| e.0);
        let samples_l = [1000i16; 160];
        let samples_r = [-2000i16; 160];
        let mut flushed_mid = false;
        for (at, channel, ts, value) in events {
            if !flushed_mid && at >= ms(600) {
                rec.flush(t0 + ms(600)).unwrap();
                flushed_mid = true;
            }
            let samples = if value > 0 { &samples_l } else { &samples_r };
            rec.push(channel, ts, samples, t0 + at);
        }
        assert_eq!(rec.late_samples(), 0);
        let info = rec.finish().unwrap();
        assert_eq!(info.duration_ms, 1000);
        assert_eq!(info.channels, 2);
        assert_eq!(info.bytes, 44 + 8000 * 4);

        let frames = read_frames(&path);
        assert_eq!(frames.len(), 8000);
        for (i, f) in frames.iter().enumerate() {
            let left = if (3200..4800).contains(&i) { 0 } else { 1000 };
            let right = if i < 4000 { 0 } else { -2000 };
            assert_eq!(*f, [left, right], "frame {i}");
        }
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn timestamp_jump_and_reanchor_follow_the_wall_clock() {
        let path = temp_path("jump");
        let t0 = Instant::now();
        let mut rec = Recorder::create_at(&path, t0).unwrap();
        rec.push(Channel::Left, 0, &[1; 160], t0);
        // 12.5 s jump in RTP time while only 100 ms passed: a new stream, placed at 100 ms.
        rec.push(Channel::Left, 100_000, &[2; 160], t0 + ms(100));
        // Explicit reanchor (e.g. SSRC change): placed where it arrives even if the timestamp
        // would put it elsewhere.
        rec.reanchor(Channel::Left);
        rec.push(Channel::Left, 100_000, &[3; 160], t0 + ms(200));
        let info = rec.finish().unwrap();
        assert_eq!(info.duration_ms, 220);
        let frames = read_frames(&path);
        assert_eq!(frames[0], [1, 0]);
        assert_eq!(frames[160], [0, 0]);
        assert_eq!(frames[800], [2, 0]);
        assert_eq!(frames[1600], [3, 0]);
        assert_eq!(frames[1759], [3, 0]);
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn flush_leaves_a_playable_file_and_overdue_flush_does_not_lose_audio() {
        let path = temp_path("flush");
        let t0 = Instant::now();
        let mut rec = Recorder::create_at(&path, t0).unwrap();
        // 3 s of audio without any flush: more than the window holds.
        for k in 0..150u32 {
            rec.push(Channel::Right, k * 160, &[7; 160], t0 + ms(20 * k as u64));
        }
        rec.flush(t0 + ms(3000)).unwrap();
        // Readable while still open, up to the flush point (3 s - margin).
        let frames = read_frames(&path);
        assert_eq!(frames.len() as u64, 24_000 - JITTER_MARGIN_FRAMES);
        assert!(frames.iter().all(|f| *f == [0, 7]));
        let info = rec.finish().unwrap();
        assert_eq!(info.duration_ms, 3000);
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn repair_after_crash() {
        let path = temp_path("repair");
        let t0 = Instant::now();
        let mut rec = Recorder::create_at(&path, t0).unwrap();
        for k in 0..100u32 {
            rec.push(Channel::Left, k * 160, &[5; 160], t0 + ms(20 * k as u64));
        }
        rec.flush(t0 + ms(2000)).unwrap();
        // kill -9: no finalize, no destructor.
        std::mem::forget(rec);
        let flushed = 16_000 - JITTER_MARGIN_FRAMES;

        // Data the process wrote after its last header update, ending mid-frame.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[1u8; 1000 * 4 + 3]).unwrap();
        drop(file);
        // Stale/corrupt sizes.
        let mut file = OpenOptions::new().write(true).open(&path).unwrap();
        file.seek(SeekFrom::Start(4)).unwrap();
        file.write_all(&0xFFFF_FFF0u32.to_le_bytes()).unwrap();
        file.seek(SeekFrom::Start(40)).unwrap();
        file.write_all(&123u32.to_le_bytes()).unwrap();
        drop(file);

        let info = repair(&path).unwrap();
        let frames = read_frames(&path);
        assert_eq!(frames.len() as u64, flushed + 1000);
        assert_eq!(info.channels, 2);
        assert_eq!(info.bytes, 44 + (flushed + 1000) * 4);
        assert_eq!(info.duration_ms, (flushed + 1000) * 1000 / 8000);
        assert_eq!(fs::metadata(&path).unwrap().len(), info.bytes);
        assert_eq!(frames[0], [5, 0]);
        // Idempotent.
        assert_eq!(repair(&path).unwrap(), info);
        // sox reads it whole, when sox is installed (it is on the project machine).
        if let Ok(out) = std::process::Command::new("sox")
            .arg("--i")
            .arg("-s")
            .arg(&path)
            .output()
        {
            assert!(
                out.status.success(),
                "sox --i: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let frames_by_sox: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
            assert_eq!(frames_by_sox, flushed + 1000);
        }
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn repair_rejects_non_wav() {
        let path = temp_path("notwav");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"hello world, not a wav").unwrap();
        assert_eq!(
            repair(&path).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
