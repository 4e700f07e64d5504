//! TEMPORARY SHIM (lead) - replaced by the rw helper's file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}
impl Version {
    pub fn from_content_type(_v: Option<&[u8]>) -> Result<Version, RwError> {
        Ok(Version::V1)
    }
    pub fn content_type(self) -> &'static str {
        "application/x-protobuf"
    }
}
pub fn check_encoding(_v: Option<&[u8]>) -> Result<(), RwError> {
    Ok(())
}
#[derive(Clone, Debug, Default)]
pub struct Limits {
    pub max_decoded_bytes: usize,
    pub max_label_names_per_series: usize,
    pub max_label_name_len: usize,
    pub max_label_value_len: usize,
    pub max_future_ms: i64,
}
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    pub samples: u64,
    pub histograms: u64,
    pub exemplars: u64,
    pub metadata: u64,
}
pub struct Decoder;
impl Decoder {
    pub fn new() -> Decoder {
        Decoder
    }
    pub fn decode(
        &mut self,
        _v: Version,
        _b: &[u8],
        _l: &Limits,
        _n: i64,
    ) -> Result<Written, RwError> {
        Ok(Written::default())
    }
}
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RwError {
    #[error("x")]
    Bad,
}
impl RwError {
    pub fn status(&self) -> u16 {
        400
    }
    pub fn reason(&self) -> &'static str {
        "bad_payload"
    }
}
