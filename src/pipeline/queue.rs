//! The queues of the pipeline: one per kind of upstream request, each with its own spool
//! directory, forwarder and metrics label.

use super::PipelineError;

/// The three queues, one per kind of upstream request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Queue {
    /// Prometheus remote_write (v1 and v2).
    RemoteWrite,
    /// RUM spans (OTLP traces).
    Traces,
    /// RUM log records (OTLP logs).
    Logs,
}

impl Queue {
    /// Every queue, in a fixed order.
    pub const ALL: [Queue; 3] = [Queue::RemoteWrite, Queue::Traces, Queue::Logs];

    /// Label value and directory name.
    pub fn name(self) -> &'static str {
        match self {
            Queue::RemoteWrite => "remote_write",
            Queue::Traces => "traces",
            Queue::Logs => "logs",
        }
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            Queue::RemoteWrite => 1,
            Queue::Traces => 2,
            Queue::Logs => 3,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Queue> {
        Queue::ALL.into_iter().find(|q| q.code() == code)
    }
}

impl std::str::FromStr for Queue {
    type Err = PipelineError;
    fn from_str(s: &str) -> Result<Queue, PipelineError> {
        Queue::ALL
            .into_iter()
            .find(|q| q.name() == s)
            .ok_or_else(|| {
                PipelineError::Config(format!("unknown queue {s:?} (remote_write, traces, logs)"))
            })
    }
}

impl std::fmt::Display for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
