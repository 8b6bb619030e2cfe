# Build: the whole crate, release profile, locked dependencies.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY migrations migrations
COPY benches benches
COPY xtask xtask
RUN cargo build --release --locked --bin dcr-gateway

# Run: a small image with libc and CA roots only, as a non-root user.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/dcr-gateway /usr/local/bin/dcr-gateway
COPY config/gateway.toml /etc/dcr-gateway/gateway.toml
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/dcr-gateway"]
CMD ["serve", "--config", "/etc/dcr-gateway/gateway.toml"]
