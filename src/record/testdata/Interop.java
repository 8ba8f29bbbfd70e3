// Interop check between ferrokafka's record-batch codec and the Java client's
// (org.apache.kafka.common.record), one codec per file.
//
//   write DIR   writes DIR/java-<codec>.bin: one batch per codec, built by MemoryRecordsBuilder
//               from the records below (the unit test `java_batches_decode` reads these)
//   read FILE.. decodes each file with MemoryRecords (CRC check included) and prints every
//               record canonically (`interop_lines` in tests.rs prints the same form)
//
// Run with Kafka 3.x client libs on the classpath (4.x moved these classes to
// org.apache.kafka.common.record.internal); scripts/kafka-local.sh fetch resolves them:
//   java -cp "$HOME/.cache/ferrokafka/kafka-3.9.2/libs/*" src/record/testdata/Interop.java write DIR
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.CompressionType;
import org.apache.kafka.common.record.MemoryRecords;
import org.apache.kafka.common.record.MemoryRecordsBuilder;
import org.apache.kafka.common.record.MutableRecordBatch;
import org.apache.kafka.common.record.Record;
import org.apache.kafka.common.record.RecordBatch;
import org.apache.kafka.common.record.SimpleRecord;
import org.apache.kafka.common.record.TimestampType;

public class Interop {
    static final String[] CODECS = {"none", "gzip", "snappy", "lz4", "zstd"};

    static byte[] utf8(String s) { return s.getBytes(StandardCharsets.UTF_8); }

    // The records: keep in step with `interop_records` in tests.rs.
    static List<SimpleRecord> records() {
        List<SimpleRecord> out = new ArrayList<>();
        for (int i = 0; i < 50; i++) {
            long ts = 1_700_000_000_000L + i * 1000L - (i % 3 == 0 ? 5000L : 0L);
            byte[] key = i % 5 == 0 ? null : utf8("key-" + i);
            byte[] value;
            if (i % 7 == 3) value = null;
            else if (i == 11) {
                value = new byte[70_000];
                for (int j = 0; j < value.length; j++) value[j] = (byte) ((j * 31 + j / 1000) % 256);
            } else value = utf8(("value-" + i).repeat(i % 4));
            Header[] headers;
            if (i % 3 == 0) headers = new Header[0];
            else if (i % 3 == 1) headers = new Header[] {new RecordHeader("h", utf8("v" + i))};
            else headers = new Header[] {new RecordHeader("dup", utf8("a")), new RecordHeader("dup", null)};
            out.add(new SimpleRecord(ts, key, value, headers));
        }
        return out;
    }

    static String hex(ByteBuffer b) {
        if (b == null) return "null";
        b = b.duplicate();
        StringBuilder sb = new StringBuilder();
        if (b.remaining() > 64) {
            // Long values: length and a simple checksum instead of every byte.
            long sum = 0;
            int n = b.remaining();
            while (b.hasRemaining()) sum = sum * 31 + (b.get() & 0xff);
            return "len" + n + ":" + Long.toHexString(sum);
        }
        while (b.hasRemaining()) sb.append(String.format("%02x", b.get() & 0xff));
        return "x" + sb;
    }

    public static void main(String[] args) throws Exception {
        if (args[0].equals("write")) {
            for (String codec : CODECS) {
                ByteBuffer buf = ByteBuffer.allocate(1 << 20);
                MemoryRecordsBuilder b = MemoryRecords.builder(buf, RecordBatch.MAGIC_VALUE_V2,
                    Compression.of(CompressionType.forName(codec)).build(), TimestampType.CREATE_TIME, 0L);
                for (SimpleRecord r : records()) b.append(r);
                MemoryRecords recs = b.build();
                ByteBuffer out = recs.buffer();
                byte[] bytes = new byte[out.remaining()];
                out.get(bytes);
                Files.write(Path.of(args[1], "java-" + codec + ".bin"), bytes);
            }
            return;
        }
        for (int a = 1; a < args.length; a++) {
            byte[] bytes = Files.readAllBytes(Path.of(args[a]));
            MemoryRecords recs = MemoryRecords.readableRecords(ByteBuffer.wrap(bytes));
            for (MutableRecordBatch batch : recs.batches()) {
                batch.ensureValid();
                System.out.println("batch " + batch.baseOffset() + " " + batch.compressionType().name
                    + " count=" + batch.countOrNull() + " last=" + batch.lastOffset()
                    + " max_ts=" + batch.maxTimestamp() + " pid=" + batch.producerId()
                    + " epoch=" + batch.producerEpoch() + " seq=" + batch.baseSequence()
                    + " txn=" + batch.isTransactional());
                for (Record r : batch) {
                    StringBuilder sb = new StringBuilder();
                    sb.append(r.offset()).append(' ').append(r.timestamp()).append(' ')
                      .append(hex(r.key())).append(' ').append(hex(r.value()));
                    for (Header h : r.headers())
                        sb.append(' ').append(h.key()).append('=')
                          .append(h.value() == null ? "null" : hex(ByteBuffer.wrap(h.value())));
                    System.out.println(sb);
                }
            }
        }
    }
}
