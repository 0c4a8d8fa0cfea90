use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use auth_domain::event::Envelope;
use auth_domain::ports::EventSink;

/// Appends one envelope per line to a file (development and tests), one write per event.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    lock: Mutex<()>,
}

impl FileSink {
    pub fn new(path: PathBuf) -> FileSink {
        FileSink { path, lock: Mutex::new(()) }
    }
}

impl EventSink for FileSink {
    fn name(&self) -> &str {
        "file"
    }

    fn deliver(&self, envelope: &Envelope) -> Result<(), String> {
        let mut line = serde_json::to_string(envelope).map_err(|e| format!("encoding the envelope: {e}"))?;
        line.push('\n');
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| format!("opening {}: {e}", self.path.display()))?;
        file.write_all(line.as_bytes()).map_err(|e| format!("writing {}: {e}", self.path.display()))
    }
}
