//! Batched frames, for clients that connect with `batch=1`: a frame may hold a JSON array of
//! messages instead of one message (docs/PROTOCOL.md, "Batched frames").
//!
//! The writer's side is [`FrameBatch`], which gathers encoded messages and hands back frames;
//! the reader's side is [`read_frame`], which turns a frame's text into its messages. Neither
//! knows a WebSocket library: the transport wraps the text in its own frame type.

use std::ops::Deref;

use crate::ServerMessage;

/// The most message bytes gathered into one frame (the brackets and commas aside). A message
/// longer than this goes alone.
pub const MAX_BATCH_BYTES: usize = 64 * 1024;

/// What one frame carries, as [`FrameBatch`] hands it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame<M> {
    /// One message, sent as it is (not copied).
    Single(M),
    /// Two messages or more, as one JSON array, in the order they were added.
    Array(String),
}

impl<M> Frame<M> {
    /// The frame's text as the transport's type: `M` itself for a single message, the array's
    /// `String` otherwise (for axum's or tungstenite's `Utf8Bytes`, both are cheap).
    pub fn into_text<T>(self) -> T
    where
        M: Into<T>,
        String: Into<T>,
    {
        match self {
            Self::Single(message) => message.into(),
            Self::Array(array) => array.into(),
        }
    }
}

impl<M: Deref<Target = str>> Deref for Frame<M> {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            Self::Single(message) => message,
            Self::Array(array) => array,
        }
    }
}

/// Encoded messages gathered for one frame: one message is sent as it is, several as a JSON
/// array of them, at most [`MAX_BATCH_BYTES`] of messages per frame.
///
/// `M` is whatever holds an encoded message as text (`String`, `Arc<str>`, a WebSocket
/// library's `Utf8Bytes`); `Deref<Target = str>` rather than `AsRef<str>` because axum's
/// `Utf8Bytes` offers only the former.
#[derive(Clone, Debug)]
pub struct FrameBatch<M> {
    messages: Vec<M>,
    /// The bytes the messages gathered take in an array frame, a comma each included.
    bytes: usize,
}

impl<M> Default for FrameBatch<M> {
    fn default() -> Self {
        Self {
            messages: Vec::new(),
            bytes: 0,
        }
    }
}

impl<M: Deref<Target = str>> FrameBatch<M> {
    /// An empty batch.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether no message is gathered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Adds a message; returns the frame of those before it when this one would take the frame
    /// past [`MAX_BATCH_BYTES`].
    pub fn add(&mut self, message: M) -> Option<Frame<M>> {
        let full = if self.bytes.saturating_add(message.len()) > MAX_BATCH_BYTES {
            self.take()
        } else {
            None
        };
        self.bytes = self.bytes.saturating_add(message.len() + 1);
        self.messages.push(message);
        full
    }

    /// The frame for the messages gathered, if any; the batch is empty afterwards.
    pub fn take(&mut self) -> Option<Frame<M>> {
        let bytes = std::mem::take(&mut self.bytes);
        match self.messages.len() {
            0 => None,
            1 => self.messages.pop().map(Frame::Single),
            _ => {
                let mut array = String::with_capacity(bytes + 2);
                array.push('[');
                for (index, message) in self.messages.drain(..).enumerate() {
                    if index > 0 {
                        array.push(',');
                    }
                    array.push_str(&message);
                }
                array.push(']');
                Some(Frame::Array(array))
            }
        }
    }
}

/// The messages in a frame the server sent, in order: every element of an array frame, or the
/// frame's one message. Works on frames of clients that did not ask for batches too (each holds
/// one message).
///
/// # Errors
/// When the frame is not a server message or an array of them.
pub fn read_frame(text: &str) -> Result<Vec<ServerMessage<'static>>, serde_json::Error> {
    if text.trim_start().starts_with('[') {
        serde_json::from_str(text)
    } else {
        ServerMessage::decode(text).map(|message| vec![message])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(frame: Option<Frame<String>>) -> String {
        match frame {
            Some(frame) => frame.into_text(),
            None => panic!("expected a frame"),
        }
    }

    #[test]
    fn one_message_goes_alone_and_several_go_as_an_array_in_order() {
        let mut batch = FrameBatch::new();
        assert!(batch.take().is_none());
        let ack = r#"{"type":"ack","seq":1,"revision":1}"#.to_owned();
        assert!(batch.add(ack.clone()).is_none());
        assert_eq!(batch.take(), Some(Frame::Single(ack)));
        for revision in 2..5 {
            let message = format!(r#"{{"type":"op","revision":{revision}}}"#);
            assert!(batch.add(message).is_none());
        }
        let array: serde_json::Value = serde_json::from_str(&text(batch.take())).unwrap();
        assert_eq!(
            array,
            serde_json::json!([
                {"type": "op", "revision": 2},
                {"type": "op", "revision": 3},
                {"type": "op", "revision": 4}
            ])
        );
        assert!(batch.take().is_none(), "taking empties the batch");
        assert!(batch.is_empty());
    }

    #[test]
    fn a_single_message_is_handed_back_as_it_is() {
        // The same allocation: a lone message is not copied into a new frame.
        let message: std::sync::Arc<str> = r#"{"type":"ack","seq":1,"revision":1}"#.into();
        let mut batch = FrameBatch::new();
        assert!(batch.add(std::sync::Arc::clone(&message)).is_none());
        match batch.take() {
            Some(Frame::Single(alone)) => assert!(std::sync::Arc::ptr_eq(&alone, &message)),
            other => panic!("expected the message alone, got {other:?}"),
        }
    }

    #[test]
    fn a_batch_that_would_grow_past_its_limit_is_handed_back_first() {
        let mut batch = FrameBatch::new();
        let large = format!(r#""{}""#, "x".repeat(MAX_BATCH_BYTES / 2));
        assert!(batch.add(large.clone()).is_none());
        // The second would take the frame past the limit: the first goes out alone.
        assert_eq!(text(batch.add(large.clone())), large);
        assert!(batch.add("1".to_owned()).is_none());
        let rest: serde_json::Value = serde_json::from_str(&text(batch.take())).unwrap();
        assert_eq!(rest.as_array().map(Vec::len), Some(2));
        // A message larger than the limit still goes, alone.
        let huge = format!(r#""{}""#, "y".repeat(MAX_BATCH_BYTES * 2));
        assert!(batch.add(huge.clone()).is_none());
        assert_eq!(text(batch.take()), huge);
    }

    #[test]
    fn a_frame_reads_as_its_text() {
        let single: Frame<&str> = Frame::Single("1");
        assert_eq!(&*single, "1");
        let array: Frame<&str> = Frame::Array("[1,2]".to_owned());
        assert_eq!(&*array, "[1,2]");
        assert_eq!(array.into_text::<String>(), "[1,2]");
    }
}
