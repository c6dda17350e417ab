# syntax=docker/dockerfile:1

# Build stage: a static binary. The SQLite driver is pure Go, so no C toolchain is needed.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/usergraph .

# Run stage: distroless, with no shell or package manager, running as a non-root user.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/usergraph /usergraph
USER nonroot:nonroot
# A home the user can write to, for the SQLite default when no DATABASE_URL is given.
WORKDIR /home/nonroot
ENV PORT=8080
EXPOSE 8080
# The image has no curl: the binary asks its own /readyz.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/usergraph", "healthcheck"]
# Exec form: the binary is PID 1 and receives SIGTERM itself, to drain in-flight requests.
ENTRYPOINT ["/usergraph"]
