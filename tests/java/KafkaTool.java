// KafkaTool -- reference behaviour from the real Java Kafka client, for ferrokafka's
// integration tests. Run it through scripts/java-tool.sh, which compiles this file
// against the kafka-clients jar of ${KAFKA_VERSION:-4.4.0} and sets up quiet logging.
//
// Only kafka-clients and the JDK are used, and only API present in both 3.9.x and 4.x.
//
// Subcommands (results on stdout, one line per item; diagnostics on stderr):
//
//   create-topic <bootstrap> <topic> <partitions> <rf>
//       Creates the topic with the AdminClient and waits until every partition has a
//       leader. Prints the topic name.
//
//   produce-keyed <bootstrap> <topic> <key>...
//       Default partitioner, acks=all; one record per key (value = key, both UTF-8).
//       Prints "key<TAB>partition" per record, in argument order.
//
//   produce <bootstrap> <topic> <none|gzip|snappy|lz4|zstd> <count> [<partition>]
//       Records i = 0..count-1: key "k-<i>" (null when i % 5 == 4), value "v-<i>"
//       (null when i % 7 == 6), headers h1="a<i>", h1="b<i>", hnull=null (in that
//       order), timestamp 1700000000000 + i, linger.ms=5, acks=all.
//       Without <partition> the default partitioner decides.
//       Prints "partition<TAB>offset<TAB>i" per record, in send order.
//
//   consume <bootstrap> <topic> <expected-count> <read_committed|read_uncommitted> [<timeout-s>=60]
//       Assigns all partitions from the beginning (no group, no commits) and polls until
//       exactly expected-count records arrived, then polls ~1 s more. Prints per record
//       "partition<TAB>offset<TAB>CREATE_TIME|LOG_APPEND_TIME<TAB>timestamp<TAB>key<TAB>value<TAB>headers"
//       with key/value base64 (or "null"), headers "name=base64" joined by "," in order
//       ("name=null" for a null value, "" for none). Records are printed in arrival order
//       (per partition in offset order).
//       Exit 2: timeout before expected-count records; exit 3: more records than expected.
//
//   txn-produce <bootstrap> <topic> <transactional-id> <plan> [<transaction-timeout-ms>]
//       plan: comma-separated steps, each c<N> (commit), a<N> (abort) or o<N> (open).
//       Step s (0-based) begins a transaction and sends N records with key null and value
//       "<letter><s>-<j>" (j = 0..N-1, letter = c/a/o), spread round-robin over the topic's
//       partitions with explicit partition numbers (one counter across the whole plan).
//       c: commit, prints "COMMITTED"; a: abort, prints "ABORTED";
//       o: flush, prints "OPEN", then waits until stdin reaches EOF (or 120 s) and halts
//          the JVM without committing or aborting (the broker keeps the transaction open
//          until its transaction timeout). Steps after an o-step are never reached.
//       Per-record "step<TAB>partition<TAB>offset<TAB>value" lines go to stderr.
//
//   protocol-vectors <out-dir>
//       No broker needed. Writes the Java client's embedded consumer-group encodings and
//       assignor results for fixed inputs, for ferrokafka's byte-for-byte unit tests:
//       <out-dir>/protocol-vectors.txt: "name<TAB>hex" lines -- ConsumerProtocol
//         subscriptions (sub-v0..sub-v3, sub-default, sub-null-v3) and assignments
//         (assign-v0..assign-v3, assign-default, assign-null-v3), StickyAssignor user
//         data (sticky-*; "null" when Java sends none) and CooperativeStickyAssignor user
//         data (cooperative-*).
//       <out-dir>/assignments.txt: 7 named scenarios and 40 seeded random ones ("random-N")
//         ("scenario", "topic", "member" lines: member id, group instance id or "-",
//         generation, topics, owned partitions or "-"), each followed per assignor
//         (range, roundrobin, sticky, cooperative-sticky) by an "assignor" line and one
//         "assigned<TAB>member<TAB>t-p,t-p..." line per member (sorted; "-" for none),
//         then "end". Every field is TAB-separated. Each member's user data comes from
//         its own Java assignor instance after onAssignment(owned, generation); sticky
//         (eager) members send no owned partitions, the others do.
//       Regenerate with: scripts/java-tool.sh protocol-vectors src/consumer/group/testdata
//
//   group-consume <bootstrap> <group-id> <topic> <range|roundrobin|sticky|cooperative-sticky> <max-seconds> [<stop-after-records>]
//       A KafkaConsumer in group <group-id> subscribed to <topic> with that Java assignor as
//       partition.assignment.strategy, auto.offset.reset=earliest, enable.auto.commit=false;
//       commitSync after each poll that returned records. Prints (stdout, flushed per line):
//       "ASSIGNED<TAB>t-p,t-p..." and "REVOKED<TAB>..." from its rebalance listener (partitions
//       sorted, empty list allowed; cooperative assignors report only the changes; lost
//       partitions print as REVOKED, the listener's default; close() revokes too),
//       "READY" once after the first assignment, "RECORD<TAB>partition<TAB>offset" per
//       record, and "CLOSED" after close(). Stops cleanly (close(), which leaves the group)
//       when stdin reaches EOF, max-seconds pass, or stop-after-records records arrived.
//       Drive it from a test with a piped stdin; drop the pipe to make it leave.
//
//   txn-bench <bootstrap> <topic> <records> <per-txn> <size> [<warmup-records>=1]
//       Transactional produce throughput, the Java side of `scripts/bench.sh txn` (mirrors
//       ferrokafka-bench txn-produce). One producer with a unique transactional.id
//       ("ferrokafka-bench-java-txn-<pid>-<nanotime>"), acks=all, linger.ms=5, otherwise
//       the client's defaults; every record has key null and the same value: <size> random
//       upper-case letters from splitmix64 with ferrokafka-bench's fixed seed (byte for byte
//       the payload of ferrokafka-bench's `make_payloads(size, 1)`). initTransactions, then
//       one warm-up transaction of <warmup-records> records, both outside the clock; then
//       <records> records in transactions of <per-txn> (beginTransaction, send each,
//       commitTransaction, which flushes and fails if any send failed). The clock runs from
//       the first timed beginTransaction to the last commitTransaction's return. Prints
//       "RESULT client=java records=N size=S compression=none seconds=.. records_per_sec=..
//       mb_per_sec=.. per_txn=P" (the format of ferrokafka-bench's RESULT lines).
//       JVM flags: run it with JAVA_TOOL_JVM_OPTS set (scripts/java-tool.sh's defaults are
//       tuned for short test runs: C1 only, serial GC).
//
// Exit codes: 0 ok, 1 error (message on stderr), 2 consume timeout, 3 consume extra records,
// 64 usage error.

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.CountDownLatch;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerPartitionAssignor;
import org.apache.kafka.clients.consumer.ConsumerPartitionAssignor.Subscription;
import org.apache.kafka.clients.consumer.internals.ConsumerProtocol;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public final class KafkaTool {
    static final long BASE_TIMESTAMP = 1_700_000_000_000L;

    /** An error that ends the tool with a message and a given exit code. */
    static final class ToolExit extends RuntimeException {
        final int code;

        ToolExit(int code, String message) {
            super(message);
            this.code = code;
        }
    }

    static ToolExit usage(String message) {
        return new ToolExit(64, message + "\n" + USAGE);
    }

    static final String USAGE = String.join("\n",
            "usage: KafkaTool <subcommand> args...",
            "  create-topic  <bootstrap> <topic> <partitions> <rf>",
            "  produce-keyed <bootstrap> <topic> <key>...",
            "  produce       <bootstrap> <topic> <none|gzip|snappy|lz4|zstd> <count> [<partition>]",
            "  consume       <bootstrap> <topic> <expected-count> <read_committed|read_uncommitted> [<timeout-seconds>=60]",
            "  txn-produce   <bootstrap> <topic> <transactional-id> <plan: c<N>|a<N>|o<N>,...> [<transaction-timeout-ms>]",
            "  protocol-vectors <out-dir>",
            "  group-consume <bootstrap> <group-id> <topic> <range|roundrobin|sticky|cooperative-sticky> <max-seconds> [<stop-after-records>]",
            "  txn-bench     <bootstrap> <topic> <records> <per-txn> <size> [<warmup-records>=1]");

    public static void main(String[] args) {
        int code;
        try {
            if (args.length == 0) {
                throw usage("missing subcommand");
            }
            String[] rest = java.util.Arrays.copyOfRange(args, 1, args.length);
            switch (args[0]) {
                case "create-topic" -> createTopic(rest);
                case "produce-keyed" -> produceKeyed(rest);
                case "produce" -> produce(rest);
                case "consume" -> consume(rest);
                case "txn-produce" -> txnProduce(rest);
                case "protocol-vectors" -> protocolVectors(rest);
                case "group-consume" -> groupConsume(rest);
                case "txn-bench" -> txnBench(rest);
                case "-h", "--help", "help" -> System.out.println(USAGE);
                default -> throw usage("unknown subcommand '" + args[0] + "'");
            }
            code = 0;
        } catch (ToolExit e) {
            System.err.println("KafkaTool: " + e.getMessage());
            code = e.code;
        } catch (Throwable e) {
            Throwable cause = unwrap(e);
            System.err.println("KafkaTool: error: " + cause);
            if (!(cause instanceof org.apache.kafka.common.errors.ApiException)) {
                cause.printStackTrace(System.err);
            }
            code = 1;
        }
        System.out.flush();
        System.err.flush();
        System.exit(code);
    }

    static Throwable unwrap(Throwable e) {
        while (e instanceof ExecutionException && e.getCause() != null) {
            e = e.getCause();
        }
        return e;
    }

    static int parseInt(String what, String s) {
        try {
            return Integer.parseInt(s);
        } catch (NumberFormatException e) {
            throw usage(what + " must be an integer, got '" + s + "'");
        }
    }

    static void expectArgs(String[] args, int min, int max, String what) {
        if (args.length < min || args.length > max) {
            throw usage(what + ": wrong number of arguments (" + args.length + ")");
        }
    }

    static byte[] utf8(String s) {
        return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
    }

    static String b64(byte[] b) {
        return b == null ? "null" : Base64.getEncoder().encodeToString(b);
    }

    // ------------------------------------------------------------------ clients

    static Properties producerProps(String bootstrap) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.CLIENT_ID_CONFIG, "ferrokafka-java-tool");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "60000");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
        return p;
    }

    /** The topic's partition count, waiting (up to 30 s) for metadata to show the topic. */
    /** Byte-array consumer, no auto commit, earliest reset, no topic auto-creation. */
    static Properties consumerProps(String bootstrap) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, "false");
        return p;
    }

    static int partitionCount(KafkaProducer<byte[], byte[]> producer, String topic) {
        List<PartitionInfo> infos = producer.partitionsFor(topic);
        if (infos == null || infos.isEmpty()) {
            throw new ToolExit(1, "topic '" + topic + "' has no partitions in metadata");
        }
        return infos.size();
    }

    // ------------------------------------------------------------------ create-topic

    static void createTopic(String[] args) throws Exception {
        expectArgs(args, 4, 4, "create-topic");
        String bootstrap = args[0], topic = args[1];
        int partitions = parseInt("partitions", args[2]);
        int rf = parseInt("rf", args[3]);
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.CLIENT_ID_CONFIG, "ferrokafka-java-tool");
        try (Admin admin = Admin.create(p)) {
            admin.createTopics(List.of(new NewTopic(topic, partitions, (short) rf)))
                    .all().get(60, TimeUnit.SECONDS);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (true) {
                String missing = null;
                try {
                    Map<String, TopicDescription> d = admin.describeTopics(List.of(topic))
                            .allTopicNames().get(10, TimeUnit.SECONDS);
                    List<TopicPartitionInfo> ps = d.get(topic).partitions();
                    if (ps.size() != partitions) {
                        missing = "describe shows " + ps.size() + " of " + partitions + " partitions";
                    } else {
                        for (TopicPartitionInfo tpi : ps) {
                            if (tpi.leader() == null || tpi.leader().isEmpty()) {
                                missing = "partition " + tpi.partition() + " has no leader";
                                break;
                            }
                        }
                    }
                } catch (ExecutionException e) {
                    missing = String.valueOf(e.getCause());
                }
                if (missing == null) {
                    break;
                }
                if (System.nanoTime() > deadline) {
                    throw new ToolExit(1, "topic '" + topic + "' created but not ready after 30 s: " + missing);
                }
                Thread.sleep(100);
            }
        }
        System.out.println(topic);
    }

    // ------------------------------------------------------------------ produce-keyed

    static void produceKeyed(String[] args) throws Exception {
        if (args.length < 3) {
            throw usage("produce-keyed: need <bootstrap> <topic> and at least one key");
        }
        String bootstrap = args[0], topic = args[1];
        List<String> keys = List.of(args).subList(2, args.length);
        List<Future<RecordMetadata>> futures = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(producerProps(bootstrap))) {
            for (String key : keys) {
                futures.add(producer.send(new ProducerRecord<>(topic, utf8(key), utf8(key))));
            }
            producer.flush();
            for (int i = 0; i < keys.size(); i++) {
                RecordMetadata md = futures.get(i).get();
                System.out.println(keys.get(i) + "\t" + md.partition());
            }
        }
    }

    // ------------------------------------------------------------------ produce

    static void produce(String[] args) throws Exception {
        expectArgs(args, 4, 5, "produce");
        String bootstrap = args[0], topic = args[1], compression = args[2];
        if (!List.of("none", "gzip", "snappy", "lz4", "zstd").contains(compression)) {
            throw usage("compression must be none|gzip|snappy|lz4|zstd, got '" + compression + "'");
        }
        int count = parseInt("count", args[3]);
        Integer partition = args.length > 4 ? parseInt("partition", args[4]) : null;

        Properties p = producerProps(bootstrap);
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, compression);
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        List<Future<RecordMetadata>> futures = new ArrayList<>(count);
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            for (int i = 0; i < count; i++) {
                byte[] key = i % 5 == 4 ? null : utf8("k-" + i);
                byte[] value = i % 7 == 6 ? null : utf8("v-" + i);
                RecordHeaders headers = new RecordHeaders();
                headers.add("h1", utf8("a" + i));
                headers.add("h1", utf8("b" + i));
                headers.add("hnull", null);
                futures.add(producer.send(new ProducerRecord<>(
                        topic, partition, BASE_TIMESTAMP + i, key, value, headers)));
            }
            producer.flush();
            for (int i = 0; i < count; i++) {
                RecordMetadata md = futures.get(i).get();
                System.out.println(md.partition() + "\t" + md.offset() + "\t" + i);
            }
        }
    }

    // ------------------------------------------------------------------ consume

    static String line(ConsumerRecord<byte[], byte[]> r) {
        StringBuilder h = new StringBuilder();
        for (Header header : r.headers()) {
            if (h.length() > 0) {
                h.append(',');
            }
            h.append(header.key()).append('=').append(b64(header.value()));
        }
        return r.partition() + "\t" + r.offset() + "\t" + r.timestampType().name() + "\t"
                + r.timestamp() + "\t" + b64(r.key()) + "\t" + b64(r.value()) + "\t" + h;
    }

    static void consume(String[] args) throws Exception {
        expectArgs(args, 4, 5, "consume");
        String bootstrap = args[0], topic = args[1];
        int expected = parseInt("expected-count", args[2]);
        String isolation = args[3];
        if (!isolation.equals("read_committed") && !isolation.equals("read_uncommitted")) {
            throw usage("isolation must be read_committed|read_uncommitted, got '" + isolation + "'");
        }
        int timeoutSeconds = args.length > 4 ? parseInt("timeout-seconds", args[4]) : 60;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutSeconds);

        Properties p = consumerProps(bootstrap);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, "ferrokafka-java-tool");

        int received = 0;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            List<PartitionInfo> infos = List.of();
            while (true) {
                try {
                    List<PartitionInfo> got = consumer.partitionsFor(topic, Duration.ofSeconds(5));
                    if (got != null && !got.isEmpty()) {
                        infos = got;
                        break;
                    }
                } catch (org.apache.kafka.common.errors.TimeoutException e) {
                    // retry until our own deadline
                }
                if (System.nanoTime() > deadline) {
                    throw new ToolExit(2, "timeout: topic '" + topic + "' not found in metadata; 0 of "
                            + expected + " records arrived");
                }
                Thread.sleep(200);
            }
            List<TopicPartition> tps = new ArrayList<>();
            for (PartitionInfo info : infos) {
                tps.add(new TopicPartition(topic, info.partition()));
            }
            tps.sort(Comparator.comparingInt(TopicPartition::partition));
            consumer.assign(tps);
            consumer.seekToBeginning(tps);

            while (received < expected) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    System.out.flush();
                    throw new ToolExit(2, "timeout after " + timeoutSeconds + " s: " + received + " of "
                            + expected + " records arrived (" + isolation + ")");
                }
                ConsumerRecords<byte[], byte[]> records =
                        consumer.poll(Duration.ofMillis(Math.min(TimeUnit.NANOSECONDS.toMillis(left) + 1, 500)));
                for (ConsumerRecord<byte[], byte[]> r : records) {
                    System.out.println(line(r));
                    received++;
                }
            }
            // Make sure the count is exact: nothing more may arrive.
            long extraDeadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(1000);
            while (true) {
                long left = extraDeadline - System.nanoTime();
                if (left <= 0) {
                    break;
                }
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(
                        Math.max(1, TimeUnit.NANOSECONDS.toMillis(left))))) {
                    System.out.println(line(r));
                    received++;
                }
            }
            if (received != expected) {
                System.out.flush();
                throw new ToolExit(3, "expected exactly " + expected + " records but " + received
                        + " arrived (" + isolation + ")");
            }
        }
    }

    // ------------------------------------------------------------------ txn-produce

    record Step(char kind, int count, String text) {}

    static List<Step> parsePlan(String plan) {
        List<Step> steps = new ArrayList<>();
        for (String raw : plan.split(",", -1)) {
            String s = raw.trim();
            if (s.length() < 2 || "cao".indexOf(s.charAt(0)) < 0) {
                throw usage("bad plan step '" + raw + "' (want c<N>, a<N> or o<N>)");
            }
            int n = parseInt("plan step count", s.substring(1));
            if (n < 0) {
                throw usage("bad plan step '" + raw + "': negative count");
            }
            steps.add(new Step(s.charAt(0), n, s));
        }
        return steps;
    }

    static void txnProduce(String[] args) throws Exception {
        expectArgs(args, 4, 5, "txn-produce");
        String bootstrap = args[0], topic = args[1], txnId = args[2];
        List<Step> steps = parsePlan(args[3]);

        Properties p = producerProps(bootstrap);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        if (args.length > 4) {
            p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, String.valueOf(parseInt("transaction-timeout-ms", args[4])));
        }
        KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p);
        boolean leftOpen = false;
        try {
            producer.initTransactions();
            int partitions = partitionCount(producer, topic);
            long next = 0; // round-robin counter across the whole plan
            for (int s = 0; s < steps.size(); s++) {
                Step step = steps.get(s);
                producer.beginTransaction();
                List<Future<RecordMetadata>> futures = new ArrayList<>();
                List<String> values = new ArrayList<>();
                for (int j = 0; j < step.count(); j++) {
                    String value = step.kind() + "" + s + "-" + j;
                    int partition = (int) (next++ % partitions);
                    values.add(value);
                    futures.add(producer.send(new ProducerRecord<>(topic, partition, null, utf8(value))));
                }
                producer.flush();
                for (int j = 0; j < futures.size(); j++) {
                    RecordMetadata md = futures.get(j).get();
                    System.err.println(step.text() + "\t" + md.partition() + "\t" + md.offset() + "\t" + values.get(j));
                }
                switch (step.kind()) {
                    case 'c' -> {
                        producer.commitTransaction();
                        System.out.println("COMMITTED");
                    }
                    case 'a' -> {
                        producer.abortTransaction();
                        System.out.println("ABORTED");
                    }
                    default -> {
                        System.out.println("OPEN");
                        System.out.flush();
                        leftOpen = true;
                        waitForStdinEof(Duration.ofSeconds(120));
                        System.err.println("KafkaTool: leaving transaction '" + txnId + "' open and exiting");
                        System.out.flush();
                        System.err.flush();
                        // No close(): a graceful close would abort the open transaction.
                        Runtime.getRuntime().halt(0);
                    }
                }
                System.out.flush();
            }
        } finally {
            if (!leftOpen) {
                producer.close(Duration.ofSeconds(30));
            }
        }
    }

    static void waitForStdinEof(Duration max) throws InterruptedException {
        stdinEof().await(max.toMillis(), TimeUnit.MILLISECONDS);
    }

    /** A latch that opens when stdin reaches EOF (or breaks), read by a daemon thread. */
    static CountDownLatch stdinEof() {
        CountDownLatch eof = new CountDownLatch(1);
        Thread reader = new Thread(() -> {
            byte[] buf = new byte[4096];
            try {
                while (System.in.read(buf) >= 0) {
                    // discard
                }
            } catch (Exception e) {
                // treat a broken stdin like EOF
            }
            eof.countDown();
        }, "stdin-eof");
        reader.setDaemon(true);
        reader.start();
        return eof;
    }

    // ---- protocol-vectors -------------------------------------------------------------

    static String hex(ByteBuffer b) {
        if (b == null) {
            return "null";
        }
        ByteBuffer d = b.duplicate();
        StringBuilder sb = new StringBuilder();
        while (d.hasRemaining()) {
            sb.append(String.format("%02x", d.get() & 0xff));
        }
        return sb.toString();
    }

    /** "t1-0,t2-3" -> partitions; "" or "-" -> none. */
    static List<TopicPartition> tps(String s) {
        List<TopicPartition> out = new ArrayList<>();
        if (s.isEmpty() || s.equals("-")) {
            return out;
        }
        for (String x : s.split(",")) {
            int i = x.lastIndexOf('-');
            out.add(new TopicPartition(x.substring(0, i), Integer.parseInt(x.substring(i + 1))));
        }
        return out;
    }

    static String tpList(java.util.Collection<TopicPartition> in) {
        List<TopicPartition> l = new ArrayList<>(in);
        l.sort(Comparator.comparing(TopicPartition::topic).thenComparingInt(TopicPartition::partition));
        StringBuilder sb = new StringBuilder();
        for (TopicPartition tp : l) {
            if (sb.length() > 0) {
                sb.append(',');
            }
            sb.append(tp.topic()).append('-').append(tp.partition());
        }
        return sb.toString();
    }

    record VMember(String id, String instance, int generation, List<String> topics, List<TopicPartition> owned) {}

    record VScenario(String name, Map<String, Integer> topics, List<VMember> members) {}

    static VMember vm(String id, String instance, int generation, String topics, String owned) {
        return new VMember(id, instance, generation, List.of(topics.split(",")), tps(owned));
    }

    static Map<String, Integer> vtopics(Object... kv) {
        Map<String, Integer> m = new java.util.LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], (Integer) kv[i + 1]);
        }
        return m;
    }

    static List<VScenario> vectorScenarios() {
        Map<String, Integer> twelve = vtopics("t1", 5, "t2", 7);
        List<VScenario> fixed = List.of(
            new VScenario("fresh-equal", twelve, List.of(
                vm("consumer-b", null, -1, "t1,t2", ""),
                vm("consumer-a", null, -1, "t1,t2", ""),
                vm("consumer-c", null, -1, "t1,t2", ""))),
            new VScenario("static-mixed", twelve, List.of(
                vm("zz-dynamic", null, -1, "t1,t2", ""),
                vm("b-member", "instance-2", -1, "t1,t2", ""),
                vm("c-member", "instance-1", -1, "t1,t2", ""),
                vm("a-member", null, -1, "t1,t2", ""))),
            new VScenario("unequal", vtopics("t1", 4, "t2", 6, "t3", 3), List.of(
                vm("consumer-a", null, -1, "t1", ""),
                vm("consumer-b", null, -1, "t1,t2", ""),
                vm("consumer-c", null, -1, "t1,t2,t3", ""))),
            new VScenario("member-left", twelve, List.of(
                vm("consumer-a", null, 3, "t1,t2", "t1-0,t1-1,t2-0,t2-1"),
                vm("consumer-b", null, 3, "t1,t2", "t1-2,t1-3,t2-2,t2-3"))),
            new VScenario("member-joined", twelve, List.of(
                vm("consumer-a", null, 4, "t1,t2", "t1-0,t1-1,t1-2,t2-0,t2-1,t2-2"),
                vm("consumer-b", null, 4, "t1,t2", "t1-3,t1-4,t2-3,t2-4,t2-5,t2-6"),
                vm("consumer-c", null, -1, "t1,t2", ""))),
            new VScenario("conflict", twelve, List.of(
                vm("consumer-a", null, 5, "t1,t2", "t1-0,t1-1,t1-2,t2-0"),
                vm("consumer-b", null, 4, "t1,t2", "t1-0,t2-1,t2-2"),
                vm("consumer-c", null, 5, "t1,t2", "t1-1,t1-3,t2-3"))),
            new VScenario("unequal-owned", vtopics("t1", 4, "t2", 6, "t3", 3), List.of(
                vm("consumer-a", null, 2, "t1,t3", "t1-0,t1-1,t1-2,t1-3,t3-0"),
                vm("consumer-b", null, 2, "t1,t2", "t2-0,t2-1,t2-2,t2-3,t2-4,t2-5"),
                vm("consumer-c", null, -1, "t1,t2,t3", ""))));
        List<VScenario> all = new ArrayList<>(fixed);
        all.addAll(randomScenarios());
        return all;
    }

    /**
     * 40 seeded random scenarios ("random-N"): 1-4 topics of 1-12 partitions, 2-7 members
     * (every other scenario with equal subscriptions, some static members), and in two of
     * three a previous assignment: the partitions dealt round robin to a random part of
     * the members at a generation of 3-5, newcomers at -1.
     */
    static List<VScenario> randomScenarios() {
        java.util.Random rnd = new java.util.Random(20261125L);
        List<VScenario> out = new ArrayList<>();
        for (int s = 0; s < 40; s++) {
            Map<String, Integer> topics = new java.util.LinkedHashMap<>();
            int nt = 1 + rnd.nextInt(4);
            for (int t = 0; t < nt; t++) {
                topics.put("t" + t, 1 + rnd.nextInt(12));
            }
            List<String> names = new ArrayList<>(topics.keySet());
            int nm = 2 + rnd.nextInt(6);
            boolean equal = s % 2 == 0;
            boolean history = rnd.nextInt(3) != 0;
            int generation = 3 + rnd.nextInt(3);
            List<String> ids = new ArrayList<>();
            List<String> instances = new ArrayList<>();
            List<List<String>> subs = new ArrayList<>();
            List<Boolean> old = new ArrayList<>();
            for (int m = 0; m < nm; m++) {
                ids.add("m-" + rnd.nextInt(1000) + "-" + m);
                instances.add(rnd.nextInt(3) == 0 ? "inst-" + (char) ('a' + rnd.nextInt(26)) + m : null);
                List<String> sub = new ArrayList<>();
                for (String t : names) {
                    if (equal || rnd.nextBoolean()) {
                        sub.add(t);
                    }
                }
                if (sub.isEmpty()) {
                    sub.add(names.get(rnd.nextInt(names.size())));
                }
                subs.add(sub);
                old.add(history && rnd.nextInt(4) != 0);
            }
            List<List<TopicPartition>> owned = new ArrayList<>();
            for (int m = 0; m < nm; m++) {
                owned.add(new ArrayList<>());
            }
            int next = 0;
            for (String t : names) {
                for (int p = 0; p < topics.get(t); p++) {
                    for (int k = 0; k < nm; k++) {
                        int m = (next + k) % nm;
                        if (old.get(m) && subs.get(m).contains(t)) {
                            owned.get(m).add(new TopicPartition(t, p));
                            next = m + 1;
                            break;
                        }
                    }
                }
            }
            List<VMember> members = new ArrayList<>();
            for (int m = 0; m < nm; m++) {
                members.add(new VMember(ids.get(m), instances.get(m), old.get(m) ? generation : -1, subs.get(m),
                        owned.get(m)));
            }
            out.add(new VScenario("random-" + s, topics, members));
        }
        return out;
    }

    static org.apache.kafka.clients.consumer.ConsumerPartitionAssignor javaAssignor(String name) {
        return switch (name) {
            case "range" -> new org.apache.kafka.clients.consumer.RangeAssignor();
            case "roundrobin" -> new org.apache.kafka.clients.consumer.RoundRobinAssignor();
            case "sticky" -> new org.apache.kafka.clients.consumer.StickyAssignor();
            case "cooperative-sticky" -> new org.apache.kafka.clients.consumer.CooperativeStickyAssignor();
            default -> throw usage("unknown assignor '" + name + "'");
        };
    }

    static void protocolVectors(String[] args) throws Exception {
        expectArgs(args, 1, 1, "protocol-vectors");
        java.nio.file.Path dir = java.nio.file.Path.of(args[0]);
        java.nio.file.Files.createDirectories(dir);

        StringBuilder v = new StringBuilder();
        List<TopicPartition> owned = List.of(new TopicPartition("topic-b", 1), new TopicPartition("topic-a", 2),
                new TopicPartition("topic-a", 0));
        Subscription full = new Subscription(List.of("topic-b", "topic-a"), ByteBuffer.wrap(new byte[] {1, 2, 3}),
                owned, 7, Optional.of("rack-1"));
        for (short ver = 0; ver <= 3; ver++) {
            v.append("sub-v").append(ver).append('\t').append(hex(ConsumerProtocol.serializeSubscription(full, ver))).append('\n');
        }
        v.append("sub-default\t").append(hex(ConsumerProtocol.serializeSubscription(full))).append('\n');
        Subscription nulls = new Subscription(List.of("t"), null, List.of(), -1, Optional.empty());
        v.append("sub-null-v3\t").append(hex(ConsumerProtocol.serializeSubscription(nulls, (short) 3))).append('\n');
        ConsumerPartitionAssignor.Assignment asg = new ConsumerPartitionAssignor.Assignment(owned, ByteBuffer.wrap(new byte[] {9, 8}));
        for (short ver = 0; ver <= 3; ver++) {
            v.append("assign-v").append(ver).append('\t').append(hex(ConsumerProtocol.serializeAssignment(asg, ver))).append('\n');
        }
        v.append("assign-default\t").append(hex(ConsumerProtocol.serializeAssignment(asg))).append('\n');
        v.append("assign-null-v3\t").append(hex(ConsumerProtocol.serializeAssignment(
                new ConsumerPartitionAssignor.Assignment(List.of(), null), (short) 3))).append('\n');

        Set<String> topics = Set.of("t1");
        org.apache.kafka.clients.consumer.StickyAssignor sticky = new org.apache.kafka.clients.consumer.StickyAssignor();
        v.append("sticky-initial\t").append(hex(sticky.subscriptionUserData(topics))).append('\n');
        sticky.onAssignment(new ConsumerPartitionAssignor.Assignment(tps("t1-2,t1-0")), groupMeta(5));
        v.append("sticky-gen5\t").append(hex(sticky.subscriptionUserData(topics))).append('\n');
        sticky.onAssignment(new ConsumerPartitionAssignor.Assignment(List.of()), groupMeta(6));
        v.append("sticky-empty-gen6\t").append(hex(sticky.subscriptionUserData(topics))).append('\n');
        org.apache.kafka.clients.consumer.CooperativeStickyAssignor coop = new org.apache.kafka.clients.consumer.CooperativeStickyAssignor();
        v.append("cooperative-initial\t").append(hex(coop.subscriptionUserData(topics))).append('\n');
        coop.onAssignment(new ConsumerPartitionAssignor.Assignment(tps("t1-2,t1-0")), groupMeta(5));
        v.append("cooperative-gen5\t").append(hex(coop.subscriptionUserData(topics))).append('\n');
        java.nio.file.Files.writeString(dir.resolve("protocol-vectors.txt"), v.toString());

        StringBuilder a = new StringBuilder();
        org.apache.kafka.common.Node node = new org.apache.kafka.common.Node(0, "localhost", 9092);
        for (VScenario sc : vectorScenarios()) {
            a.append("scenario\t").append(sc.name()).append('\n');
            List<PartitionInfo> infos = new ArrayList<>();
            for (Map.Entry<String, Integer> t : sc.topics().entrySet()) {
                a.append("topic\t").append(t.getKey()).append('\t').append(t.getValue()).append('\n');
                for (int p = 0; p < t.getValue(); p++) {
                    infos.add(new PartitionInfo(t.getKey(), p, node, new org.apache.kafka.common.Node[] {node},
                            new org.apache.kafka.common.Node[] {node}));
                }
            }
            org.apache.kafka.common.Cluster cluster = new org.apache.kafka.common.Cluster("c", List.of(node), infos,
                    Set.of(), Set.of());
            for (VMember m : sc.members()) {
                a.append("member\t").append(m.id()).append('\t').append(m.instance() == null ? "-" : m.instance())
                        .append('\t').append(m.generation()).append('\t').append(String.join(",", m.topics()))
                        .append('\t').append(m.owned().isEmpty() ? "-" : tpList(m.owned())).append('\n');
            }
            for (String name : List.of("range", "roundrobin", "sticky", "cooperative-sticky")) {
                Map<String, Subscription> subs = new java.util.HashMap<>();
                for (VMember m : sc.members()) {
                    // Each member's own assignor instance makes its user data, as in a real group.
                    ConsumerPartitionAssignor own = javaAssignor(name);
                    if (m.generation() >= 0) {
                        own.onAssignment(new ConsumerPartitionAssignor.Assignment(m.owned()), groupMeta(m.generation()));
                    }
                    ByteBuffer userData = own.subscriptionUserData(new java.util.HashSet<>(m.topics()));
                    // Eager members revoke everything before joining: no owned partitions sent.
                    List<TopicPartition> sentOwned = name.equals("sticky") ? List.of() : m.owned();
                    Subscription s = new Subscription(m.topics(), userData, sentOwned, m.generation(), Optional.empty());
                    s.setGroupInstanceId(Optional.ofNullable(m.instance()));
                    subs.put(m.id(), s);
                }
                ConsumerPartitionAssignor.GroupAssignment ga = javaAssignor(name).assign(cluster,
                        new ConsumerPartitionAssignor.GroupSubscription(subs));
                a.append("assignor\t").append(name).append('\n');
                List<String> ids = new ArrayList<>(ga.groupAssignment().keySet());
                java.util.Collections.sort(ids);
                for (String id : ids) {
                    String l = tpList(ga.groupAssignment().get(id).partitions());
                    a.append("assigned\t").append(id).append('\t').append(l.isEmpty() ? "-" : l).append('\n');
                }
            }
            a.append("end\n");
        }
        java.nio.file.Files.writeString(dir.resolve("assignments.txt"), a.toString());
        System.out.println(dir.resolve("protocol-vectors.txt"));
        System.out.println(dir.resolve("assignments.txt"));
    }

    static org.apache.kafka.clients.consumer.ConsumerGroupMetadata groupMeta(int generation) {
        return new org.apache.kafka.clients.consumer.ConsumerGroupMetadata("group", generation, "member", Optional.empty());
    }

    // ---- group-consume ----------------------------------------------------------------

    static synchronized void out(String line) {
        System.out.println(line);
        System.out.flush();
    }

    static void groupConsume(String[] args) throws Exception {
        expectArgs(args, 5, 6, "group-consume");
        String bootstrap = args[0], group = args[1], topic = args[2], assignor = args[3];
        String cls = javaAssignor(assignor).getClass().getName();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(parseInt("max-seconds", args[4]));
        long stopAfter = args.length > 5 ? parseInt("stop-after-records", args[5]) : Long.MAX_VALUE;

        Properties p = consumerProps(bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, cls);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, "ferrokafka-java-tool-" + group);

        CountDownLatch eof = stdinEof();

        boolean[] ready = {false};
        long received = 0;
        KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p);
        try {
            consumer.subscribe(List.of(topic), new org.apache.kafka.clients.consumer.ConsumerRebalanceListener() {
                @Override
                public void onPartitionsRevoked(java.util.Collection<TopicPartition> partitions) {
                    out("REVOKED\t" + tpList(partitions));
                }

                @Override
                public void onPartitionsAssigned(java.util.Collection<TopicPartition> partitions) {
                    out("ASSIGNED\t" + tpList(partitions));
                    if (!ready[0]) {
                        ready[0] = true;
                        out("READY");
                    }
                }
            });
            while (eof.getCount() > 0 && System.nanoTime() < deadline && received < stopAfter) {
                ConsumerRecords<byte[], byte[]> recs = consumer.poll(Duration.ofMillis(200));
                for (ConsumerRecord<byte[], byte[]> r : recs) {
                    out("RECORD\t" + r.partition() + "\t" + r.offset());
                    received++;
                }
                if (!recs.isEmpty()) {
                    consumer.commitSync();
                }
            }
        } finally {
            consumer.close(Duration.ofSeconds(30));
        }
        out("CLOSED");
    }

    // ------------------------------------------------------------------ txn-bench

    /** ferrokafka-bench's make_payloads(size, 1): splitmix64 from its fixed seed, 'A' + next % 26. */
    static byte[] benchPayload(int size) {
        long state = 0x5EEDF00DCAFEBABEL;
        byte[] out = new byte[size];
        for (int i = 0; i < size; i++) {
            state += 0x9E3779B97F4A7C15L;
            long z = state;
            z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
            z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
            z = z ^ (z >>> 31);
            out[i] = (byte) ('A' + Long.remainderUnsigned(z, 26));
        }
        return out;
    }

    static void txnBench(String[] args) throws Exception {
        expectArgs(args, 5, 6, "txn-bench");
        String bootstrap = args[0];
        String topic = args[1];
        long records = Long.parseLong(args[2]);
        int perTxn = parseInt("per-txn", args[3]);
        int size = parseInt("size", args[4]);
        int warmup = args.length > 5 ? parseInt("warmup-records", args[5]) : 1;
        if (records < 1 || perTxn < 1 || size < 1 || warmup < 0) {
            throw usage("txn-bench: records, per-txn and size must be at least 1, warmup-records at least 0");
        }
        byte[] payload = benchPayload(size);
        System.err.println("txn-bench: payload starts " + new String(payload, 0, Math.min(16, size), StandardCharsets.US_ASCII));
        Properties p = producerProps(bootstrap);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG,
                "ferrokafka-bench-java-txn-" + ProcessHandle.current().pid() + "-" + System.nanoTime());
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "120000");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "60000");
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            producer.initTransactions();
            if (warmup > 0) {
                producer.beginTransaction();
                for (int i = 0; i < warmup; i++) {
                    producer.send(new ProducerRecord<>(topic, null, payload));
                }
                producer.commitTransaction();
            }
            long start = System.nanoTime();
            long sent = 0;
            while (sent < records) {
                producer.beginTransaction();
                long n = Math.min(perTxn, records - sent);
                for (long i = 0; i < n; i++) {
                    producer.send(new ProducerRecord<>(topic, null, payload));
                }
                producer.commitTransaction();
                sent += n;
            }
            double secs = (System.nanoTime() - start) / 1e9;
            System.out.printf(java.util.Locale.ROOT,
                    "RESULT client=java records=%d size=%d compression=none seconds=%.3f records_per_sec=%.1f mb_per_sec=%.2f per_txn=%d%n",
                    records, size, secs, records / secs, records * (double) size / (1024.0 * 1024.0) / secs, perTxn);
        }
    }
}
