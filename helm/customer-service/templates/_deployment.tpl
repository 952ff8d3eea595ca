{{/*
One Deployment per process, all from the same image and environment. Call with
(dict "root" $ "component" "api" "single" false): `single` processes (scheduler,
operator) run exactly one replica and are replaced with Recreate, so two never
overlap during a rollout. Every process serves /metrics on METRICS_PORT.
*/}}
{{- define "customer-service.deployment" -}}
{{- $root := .root -}}
{{- $c := .component -}}
{{- $v := index $root.Values $c -}}
{{- $ctx := dict "root" $root "component" $c -}}
{{- $autoscaled := or (dig "autoscaling" "enabled" false $v) (dig "keda" "enabled" false $v) -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "customer-service.componentName" $ctx }}
  labels:
    {{- include "customer-service.componentLabels" $ctx | nindent 4 }}
spec:
  {{- if .single }}
  replicas: 1
  strategy:
    type: Recreate
  {{- else }}
  {{- if not $autoscaled }}
  replicas: {{ $v.replicas }}
  {{- end }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 25%
      maxUnavailable: 0
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "customer-service.componentSelectorLabels" $ctx | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "customer-service.componentLabels" $ctx | nindent 8 }}
        {{- with $root.Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        # A changed ConfigMap or Secret rolls the pods, which read both only at start.
        checksum/config: {{ include "customer-service.configData" $root | sha256sum }}
        checksum/secret: {{ include "customer-service.secretData" $root | sha256sum }}
        {{- with $root.Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      {{- if eq $c "operator" }}
      serviceAccountName: {{ include "customer-service.operatorServiceAccountName" $root }}
      automountServiceAccountToken: true
      {{- else }}
      serviceAccountName: {{ include "customer-service.serviceAccountName" $root }}
      automountServiceAccountToken: false
      {{- end }}
      enableServiceLinks: false
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
      {{- with $root.Values.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if and (not .single) $root.Values.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- range $root.Values.topologySpreadConstraints }}
        - labelSelector:
            matchLabels:
              {{- include "customer-service.componentSelectorLabels" $ctx | nindent 14 }}
          {{- toYaml . | nindent 10 }}
        {{- end }}
      {{- end }}
      containers:
        - name: {{ $c }}
          image: {{ include "customer-service.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: ["customer-service"]
          args: [{{ .subcommand | quote }}]
          ports:
            {{- if eq $c "api" }}
            - name: grpc
              containerPort: {{ $root.Values.service.grpcPort }}
              protocol: TCP
            {{- end }}
            {{- if or (eq $c "operator") (eq $c "consumer") }}
            - name: health
              containerPort: {{ $v.healthPort }}
              protocol: TCP
            {{- end }}
            - name: metrics
              containerPort: {{ $root.Values.metrics.port }}
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ include "customer-service.fullname" $root }}
            - secretRef:
                name: {{ include "customer-service.secretName" $root }}
          {{- $tls := and (eq $c "api") $v.tls.secretName }}
          {{- if or $v.extraEnv $tls }}
          env:
            {{- if $tls }}
            - {name: TLS_CERT_FILE, value: /etc/customer-service/tls/tls.crt}
            - {name: TLS_KEY_FILE, value: /etc/customer-service/tls/tls.key}
            {{- if $v.tls.mutual }}
            - {name: TLS_CLIENT_CA_FILE, value: /etc/customer-service/tls/ca.crt}
            {{- end }}
            {{- end }}
            {{- with $v.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- end }}
          {{- if and (eq $c "api") $tls }}
          # Kubelet's gRPC probes speak plaintext only: with TLS, check the port is open.
          startupProbe:
            tcpSocket:
              port: grpc
            periodSeconds: 2
            failureThreshold: 60
          livenessProbe:
            tcpSocket:
              port: grpc
            periodSeconds: 10
            failureThreshold: 3
          readinessProbe:
            tcpSocket:
              port: grpc
            periodSeconds: 5
            failureThreshold: 2
          {{- end }}
          {{- if and (eq $c "api") (not $tls) }}
          # The standard grpc.health.v1 service: "" is the whole server, the named
          # service turns NOT_SERVING first when the pod drains.
          startupProbe:
            grpc:
              port: {{ $root.Values.service.grpcPort }}
              service: ""
            periodSeconds: 2
            failureThreshold: 60
          livenessProbe:
            grpc:
              port: {{ $root.Values.service.grpcPort }}
              service: ""
            periodSeconds: 10
            timeoutSeconds: 5
            failureThreshold: 3
          readinessProbe:
            grpc:
              port: {{ $root.Values.service.grpcPort }}
              service: customer.v1.CustomerService
            periodSeconds: 5
            timeoutSeconds: 3
            failureThreshold: 2
          {{- end }}
          {{- if eq $c "api" }}
          lifecycle:
            preStop:
              exec:
                command: ["sleep", {{ $v.preStopSleepSeconds | toString | quote }}]
          {{- else if eq $c "consumer" }}
          # Live: the poll loop turns. Ready: in the group and making progress; a stuck
          # database makes it unready, not restarted.
          livenessProbe:
            httpGet:
              path: /livez
              port: health
            initialDelaySeconds: 10
            periodSeconds: 15
            timeoutSeconds: 5
            failureThreshold: 4
          readinessProbe:
            httpGet:
              path: /readyz
              port: health
            periodSeconds: 10
            timeoutSeconds: 5
            failureThreshold: 3
          {{- else if eq $c "operator" }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: health
            initialDelaySeconds: 10
            periodSeconds: 15
            timeoutSeconds: 5
            failureThreshold: 4
          {{- else }}
          # The metrics server answers once the process is up and stops with it.
          livenessProbe:
            httpGet:
              path: /metrics
              port: metrics
            initialDelaySeconds: 10
            periodSeconds: 15
            timeoutSeconds: 5
            failureThreshold: 4
          {{- end }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            # The root filesystem is read-only; Python and kopf may still want a scratch dir.
            - name: tmp
              mountPath: /tmp
            {{- if $tls }}
            - name: tls
              mountPath: /etc/customer-service/tls
              readOnly: true
            {{- end }}
            {{- if and (eq $c "api") $v.auth.secretName }}
            - name: auth
              mountPath: /etc/customer-service/auth
              readOnly: true
            {{- end }}
            {{- if $root.Values.kafkaTls.secretName }}
            - name: kafka-tls
              mountPath: /etc/customer-service/kafka-tls
              readOnly: true
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
        {{- if $tls }}
        - name: tls
          secret:
            secretName: {{ $v.tls.secretName }}
        {{- end }}
        {{- if and (eq $c "api") $v.auth.secretName }}
        - name: auth
          secret:
            secretName: {{ $v.auth.secretName }}
        {{- end }}
        {{- with $root.Values.kafkaTls.secretName }}
        - name: kafka-tls
          secret:
            secretName: {{ . }}
        {{- end }}
      {{- with $root.Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}
