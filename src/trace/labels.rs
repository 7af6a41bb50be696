//! The diagrams' words, in English and Chinese.

use super::{Part, Side};

/// The words the diagrams use, in one language: [`Labels::EN`] or
/// [`Labels::ZH`]. 粘包 and 分包 are named in Chinese in both, as the
/// seed names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Labels {
    /// The left lifeline.
    pub client: &'static str,
    /// The right lifeline.
    pub server: &'static str,
    /// The time column.
    pub time: &'static str,
    /// A write call.
    pub write: &'static str,
    /// A read call.
    pub read: &'static str,
    /// A read of 0 bytes.
    pub end_of_stream: &'static str,
    /// The frame's parts, short: length, header, body.
    pub parts: [&'static str; 3],
    /// The legend's names for the parts, and for unframed bytes.
    pub legend: [&'static str; 4],
    /// 粘包, explained.
    pub sticky: &'static str,
    /// 分包, explained.
    pub split: &'static str,
    /// Counted writes and reads: "writes", "reads".
    pub writes: &'static str,
    /// See `writes`.
    pub reads: &'static str,
    /// A frame read in its parts, each whole: "1 message," before the
    /// count of its reads.
    pub one_message: &'static str,
    /// After that count: "parts".
    pub parts_word: &'static str,
    /// The pieces the network cut a write into (after 分包's count).
    pub pieces: &'static str,
    /// The summary's messages: "messages".
    pub messages: &'static str,
    /// Messages that arrived whole (after their count).
    pub whole: &'static str,
    /// Messages the network cut (after their count).
    pub split_by_network: &'static str,
    /// Calls recorded beyond [`MAX_EVENTS`](super::MAX_EVENTS).
    pub not_kept: &'static str,
    /// Calls beyond the rows a diagram draws.
    pub not_drawn: &'static str,
    /// How to read a diagram: the paragraph above them on a page.
    pub how_to_read: &'static str,
}

impl Labels {
    /// English.
    pub const EN: Labels = Labels {
        client: "client",
        server: "server",
        time: "time",
        write: "write",
        read: "read",
        end_of_stream: "end of stream",
        parts: ["len", "header", "body"],
        legend: ["4-byte length", "JSON header", "body", "raw bytes"],
        sticky: "粘包 one read, several writes",
        split: "分包 one write, several reads",
        writes: "writes",
        reads: "reads",
        one_message: "1 message,",
        parts_word: "parts",
        pieces: "pieces",
        messages: "messages",
        whole: "whole",
        split_by_network: "split by the network (分包)",
        not_kept: "later calls not kept",
        not_drawn: "more calls, not drawn",
        how_to_read: "Each row is one call, in the order the calls were made. An arrow leaves the writer's lifeline at its write and ends at every read that returned any of its bytes: arrows that fan out are 分包 (one write, several reads), arrows that meet are 粘包 (one read, several writes). Colours show the seed's frame: the 4-byte length, the JSON header, the body; grey bytes are not framed. A frame whose reader takes its length, header and body apart, each whole, is one message read in its parts, not 分包; 分包 is a read that ends inside a part. Hover over a read for the frame parts it returned.",
    };

    /// Chinese.
    pub const ZH: Labels = Labels {
        client: "客户端",
        server: "服务端",
        time: "时间",
        write: "写",
        read: "读",
        end_of_stream: "流结束",
        parts: ["长度", "报头", "数据"],
        legend: ["4 字节长度", "JSON 报头", "数据", "原始字节"],
        sticky: "粘包 一次读含多次写",
        split: "分包 一次写分多次读",
        writes: "次写",
        reads: "次读",
        one_message: "一条消息,",
        parts_word: "部分",
        pieces: "片",
        messages: "消息",
        whole: "条完整",
        split_by_network: "条被网络切开 (分包)",
        not_kept: "次之后的调用未保存",
        not_drawn: "次调用未画出",
        how_to_read: "每一行是一次调用, 按调用的先后排列。箭头从写方生命线上的那次写出发, 指向收到它任何字节的每一次读: 箭头散开是分包 (一次写, 多次读), 箭头汇聚是粘包 (一次读, 多次写)。颜色标出教程的报头: 4 字节长度、JSON 报头、数据; 灰色是没有报头的字节。接收方把一帧的长度、报头、数据分开读、每部分都完整, 这是分部分读的一条消息, 不是分包; 分包是一次读在某部分的中间结束。鼠标停在一次读上, 可以看到它读到的报头部分。",
    };

    /// The labels for a language code: `zh*` is Chinese, anything else
    /// English.
    ///
    /// ```
    /// use socketserver::trace::{Labels, Part, Side};
    /// assert_eq!(Labels::for_lang("zh-CN").side(Side::Server), "服务端");
    /// assert_eq!(Labels::for_lang("en").part(Part::Header), "header");
    /// ```
    pub fn for_lang(code: &str) -> Labels {
        if code.starts_with("zh") {
            Labels::ZH
        } else {
            Labels::EN
        }
    }

    /// The name of one side's lifeline.
    pub fn side(&self, side: Side) -> &'static str {
        match side {
            Side::Client => self.client,
            Side::Server => self.server,
        }
    }

    /// The short name of a frame part.
    pub fn part(&self, part: Part) -> &'static str {
        match part {
            Part::Length => self.parts[0],
            Part::Header => self.parts[1],
            Part::Body => self.parts[2],
        }
    }
}
